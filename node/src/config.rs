//! The node's configuration and the layout of its data folder.
//!
//! The library takes a [`Config`] value; it never reads the environment. The binary layers
//! defaults, then `config.toml` (parsed here by [`ConfigFile::parse`]), then the
//! environment, then flags.
//!
//! Data folder layout (mode 0700):
//! - `config.toml`: the commented configuration.
//! - `keys/`: `organisation.ed25519` and `encryption.x25519`, mode 0600.
//! - `store/`: the sled database (signed changes, snapshots, and encrypted case files).
//! - `case-keys/`: one key file per case file held (mode 0600); erasing a case file
//!   destroys its key.
//! - `control.sock`: the local control API's Unix socket, mode 0600, while the node runs.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::reference::Lang;

/// Name of the configuration file in the data folder.
pub const CONFIG_FILE: &str = "config.toml";
/// Name of the store folder in the data folder.
pub const STORE_DIR: &str = "store";
/// Name of the control socket in the data folder.
pub const CONTROL_SOCKET: &str = "control.sock";
/// Where a node listens when nothing else is configured.
pub const DEFAULT_LISTEN: &str = "/ip4/0.0.0.0/tcp/4690";
/// Default days a receiving organisation keeps a case file after its referral closes.
pub const DEFAULT_RETENTION_DAYS: u64 = 90;
/// Default number of changes to a document between two snapshots.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 500;

/// Everything a node needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data folder.
    pub data_dir: PathBuf,
    /// Changes to a document after which a new snapshot is written.
    pub snapshot_every: u64,
    /// Language of labels in human output.
    pub lang: Lang,
    /// Networking; `None` runs the node without it (local use, tests).
    pub network: Option<NetworkConfig>,
    /// How long the receiving organisation keeps access to a case file after its referral
    /// closes; then its key is destroyed.
    pub retention: std::time::Duration,
    /// How long the sending organisation keeps its own copy of a case file after its
    /// referral closes (default: as long as the receiver).
    pub sender_retention: std::time::Duration,
    /// The passphrase protecting the key files (none: they are not protected, or not
    /// opened). Never written anywhere by the node.
    pub passphrase: Option<crate::keys::Passphrase>,
    /// Where sealed backups of the case files go, and erasures are recorded.
    pub backup_dir: Option<PathBuf>,
    /// The backup key's public half.
    pub backup_key: Option<crate::identity::EncryptionPublicKey>,
    /// The smallest count the referral reports show (smaller ones are `<N`, others
    /// withheld so they cannot be recomputed); 1 shows every count.
    pub report_min_count: u64,
    /// How often the node records expired referrals and ends access past retention.
    pub housekeeping_interval: std::time::Duration,
    /// At start, decode and verify every stored signed change and rebuild every document
    /// from them, instead of taking each document from a snapshot that holds all its
    /// stored changes (`passerelle start --verify-store`).
    pub verify_store: bool,
    /// How long after start the node reads and verifies its whole store in the background
    /// (`status` reports what it found); `None`: never.
    pub store_check_after: Option<std::time::Duration>,
}

impl Config {
    /// Defaults for a data folder.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            lang: Lang::Fr,
            network: None,
            retention: std::time::Duration::from_secs(DEFAULT_RETENTION_DAYS * 24 * 3600),
            sender_retention: std::time::Duration::from_secs(DEFAULT_RETENTION_DAYS * 24 * 3600),
            report_min_count: crate::referral::report::DEFAULT_MIN_COUNT,
            passphrase: None,
            backup_dir: None,
            backup_key: None,
            housekeeping_interval: std::time::Duration::from_secs(60),
            verify_store: false,
            store_check_after: Some(std::time::Duration::from_secs(30)),
        }
    }

    /// Applies the values a config file sets.
    pub fn with_file(mut self, file: &ConfigFile) -> Self {
        if let Some(every) = file.node.snapshot_every {
            self.snapshot_every = every.max(1);
        }
        if let Some(lang) = file.node.lang {
            self.lang = lang;
        }
        if let Some(seconds) = file.node.store_check_after_seconds {
            self.store_check_after = Some(std::time::Duration::from_secs(seconds));
        }
        if let Some(days) = file.referrals.retention_days {
            self.retention = std::time::Duration::from_secs(days * 24 * 3600);
            self.sender_retention = self.retention;
        }
        if let Some(days) = file.referrals.sender_retention_days {
            self.sender_retention = std::time::Duration::from_secs(days * 24 * 3600);
        }
        if let Some(dir) = &file.backup.dir {
            self.backup_dir = Some(dir.clone());
        }
        if let Some(key) = file.backup.public_key {
            self.backup_key = Some(key);
        }
        if let Some(min) = file.referrals.report_min_count {
            self.report_min_count = min.max(1);
        }
        self
    }

    /// The network configuration `config.toml` asks for, over the defaults (listen on
    /// [`DEFAULT_LISTEN`], no peers); `None` when `[network] enabled = false`.
    pub fn network_from_file(file: &ConfigFile) -> Result<Option<NetworkConfig>, ConfigError> {
        let section = &file.network;
        if section.enabled == Some(false) {
            return Ok(None);
        }
        let parse = |field: &str, list: &[String]| {
            list.iter()
                .map(|text| {
                    text.parse::<libp2p::Multiaddr>()
                        .map_err(|e| ConfigError::Address {
                            field: field.to_owned(),
                            value: text.clone(),
                            reason: e.to_string(),
                        })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let listen = match &section.listen {
            Some(list) => parse("network.listen", list)?,
            None => parse("network.listen", &[DEFAULT_LISTEN.to_owned()])?,
        };
        let peers = match &section.peers {
            Some(peers) => parse("network.peers", peers)?,
            None => Vec::new(),
        };
        let external = match &section.external {
            Some(list) => parse("network.external", list)?,
            None => Vec::new(),
        };
        let mut network = NetworkConfig {
            listen,
            peers,
            external,
            mdns: section.mdns.unwrap_or(true),
            relay: section.relay.unwrap_or_default(),
            hole_punching: section.hole_punching.unwrap_or(true),
            upnp: section.upnp.unwrap_or(true),
            ..Default::default()
        };
        if let Some(seconds) = section.sync_interval_seconds {
            network.sync_interval = std::time::Duration::from_secs(seconds.max(1));
        }
        Ok(Some(network))
    }

    /// The sled store's folder.
    pub fn store_dir(&self) -> PathBuf {
        self.data_dir.join(STORE_DIR)
    }

    /// The control socket's path.
    pub fn control_socket(&self) -> PathBuf {
        control_socket(&self.data_dir)
    }
}

/// The control socket's path for a data folder.
pub fn control_socket(data_dir: &Path) -> PathBuf {
    data_dir.join(CONTROL_SOCKET)
}

/// Errors of the configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is not valid TOML or has unknown keys.
    #[error("config.toml: {0}")]
    Parse(#[from] toml::de::Error),
    /// An address is not a multiaddr.
    #[error(
        "config.toml: {field}: {value:?} is not a multiaddr like /ip4/192.0.2.10/tcp/4690 ({reason})"
    )]
    Address {
        /// The key.
        field: String,
        /// The value.
        value: String,
        /// Why.
        reason: String,
    },
}

/// The contents of `config.toml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// About the organisation.
    #[serde(default)]
    pub organisation: OrganisationSection,
    /// About the node.
    #[serde(default)]
    pub node: NodeSection,
    /// Networking.
    #[serde(default)]
    pub network: NetworkSection,
    /// Referrals and case files.
    #[serde(default)]
    pub referrals: ReferralsSection,
    /// The officers' web page.
    #[serde(default)]
    pub web: WebSection,
    /// Notifications outside the page: a webhook, a daily digest by e-mail.
    #[serde(default)]
    pub notify: NotifySection,
    /// Metrics for monitoring.
    #[serde(default)]
    pub metrics: MetricsSection,
    /// Backups of the case files, sealed to a backup key.
    #[serde(default)]
    pub backup: BackupSection,
}

/// `[backup]`: where `passerelle backup write` puts its sealed backups of the case files
/// (and where every erasure is recorded, so that a restore destroys what was erased since),
/// and the backup key's public half they are sealed to.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSection {
    /// The folder (another disk, a mounted share).
    pub dir: Option<PathBuf>,
    /// The backup key's public half (`passerelle backup key` prints it).
    pub public_key: Option<crate::identity::EncryptionPublicKey>,
}

/// `[metrics]`: an OpenMetrics endpoint (`/metrics`) and a health check (`/health`) for
/// monitoring, off unless `listen` is given (e.g. `127.0.0.1:9464`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Address and port to serve them on.
    pub listen: Option<String>,
}

/// `[notify]`: notifications outside the web page, for offices that want them: a webhook
/// the node calls when its counts change, and a daily digest by e-mail through the office's
/// SMTP server. Both carry referral ids and counts only, never personal data.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySection {
    /// URL the node POSTs its counts to (JSON) when they change: `https://…` (or `http://`
    /// on the office's own network).
    pub webhook: Option<String>,
    /// The office's SMTP server for the daily digest: `smtp://user@mail.example.cm:587`
    /// (STARTTLS required), `smtps://user@mail.example.cm` (TLS, port 465), or
    /// `smtp://127.0.0.1:25` (a local relay, no TLS).
    pub smtp: Option<String>,
    /// A file holding the SMTP password (mode 0600), rather than in this file.
    pub smtp_password_file: Option<std::path::PathBuf>,
    /// The digest's sender address.
    pub from: Option<String>,
    /// Its recipients.
    pub to: Option<Vec<String>>,
    /// When the digest leaves each day, `HH:MM` (default 07:00).
    pub digest_at: Option<String>,
    /// The offset from UTC of `digest_at` (default `+01:00`, Cameroon's time).
    pub utc_offset: Option<String>,
}

/// Where the web page listens by default: this computer only.
pub const DEFAULT_WEB_LISTEN: &str = "127.0.0.1:4691";

/// `[web]`: the officers' web page, served by `passerelle start`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSection {
    /// Serve the page (default true).
    pub enabled: Option<bool>,
    /// Address and port (default 127.0.0.1:4691). Any address but a loopback one is served
    /// over TLS only.
    pub listen: Option<String>,
    /// The TLS certificate (PEM) for a LAN address; without it one is made at first start
    /// (`web-tls/` in the data folder) and its fingerprint printed.
    pub certificate: Option<std::path::PathBuf>,
    /// Its private key (PEM).
    pub key: Option<std::path::PathBuf>,
    /// Serve over TLS even on a loopback address (behind an SSH tunnel, say).
    pub tls: Option<bool>,
}

/// `[referrals]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferralsSection {
    /// Days the receiving organisation keeps a case file after its referral closes.
    pub retention_days: Option<u64>,
    /// Days the sending organisation keeps its own copy after the referral closes (default:
    /// `retention_days`).
    pub sender_retention_days: Option<u64>,
    /// The smallest count the reports show (default 5; 1 shows every count).
    pub report_min_count: Option<u64>,
}

/// `[network]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    /// Run networking at all (default true).
    pub enabled: Option<bool>,
    /// Addresses to listen on (multiaddrs).
    pub listen: Option<Vec<String>>,
    /// Peers to connect to (multiaddrs).
    pub peers: Option<Vec<String>>,
    /// Seconds between two catch-ups with each peer.
    pub sync_interval_seconds: Option<u64>,
    /// Find partners on the local network by mDNS (default true).
    pub mdns: Option<bool>,
    /// Serve as a relay for members behind NAT: "auto" (when this node finds itself
    /// publicly reachable; the default), "on", "off".
    pub relay: Option<RelayMode>,
    /// Try to turn a relayed connection into a direct one (hole punching; default true).
    pub hole_punching: Option<bool>,
    /// Ask the office router to open a port (UPnP IGD; default true).
    pub upnp: Option<bool>,
    /// Addresses partners reach this node on, when it knows them (a port forwarded on the
    /// router, a public DNS name): announced as they are, and taken as reachable.
    pub external: Option<Vec<String>>,
}

/// Whether this node serves as a relay for members behind NAT (`[network] relay`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayMode {
    /// Serve once this node is found publicly reachable (AutoNAT), or has an `external`
    /// address.
    #[default]
    Auto,
    /// Serve whenever it runs (its listen addresses are taken as reachable).
    On,
    /// Never serve.
    Off,
}

/// `[organisation]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganisationSection {
    /// The organisation's name, as given to `passerelle init` (informational).
    pub name: Option<String>,
}

/// `[node]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Changes between two snapshots of a document.
    pub snapshot_every: Option<u64>,
    /// Language of labels: "fr" or "en".
    pub lang: Option<Lang>,
    /// Seconds after start before the whole store is read and verified in the background
    /// (default 30; 0: at once).
    pub store_check_after_seconds: Option<u64>,
}

impl ConfigFile {
    /// Parses the text of `config.toml`.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Ok(toml::from_str(text)?)
    }

    /// The commented file `passerelle init` writes.
    pub fn template(org_name: &str) -> String {
        let name = toml::Value::String(org_name.to_owned()).to_string();
        format!(
            r#"# Passerelle node configuration.
# Values here override the defaults; environment variables and command-line flags
# override this file. See docs/operator-guide.md.

[organisation]
# The name given to `passerelle init`. The profile itself lives in the organisation's
# signed document: change it with `passerelle org set`.
name = {name}

[node]
# Write a compact snapshot of a document after this many changes (faster start).
# snapshot_every = {DEFAULT_SNAPSHOT_EVERY}

# Language of labels in tables and reports: "fr" or "en".
# lang = "fr"

[network]
# Set to false to run this node without networking.
# enabled = true

# Addresses to listen on. Open this TCP port in the firewall for partners to reach you.
# listen = ["{DEFAULT_LISTEN}"]

# Partner nodes to connect to and stay connected to (ask them for their address).
# peers = ["/ip4/192.0.2.10/tcp/4690", "/dns4/passerelle.example.cm/tcp/4690"]

# Seconds between two catch-ups with each connected peer.
# sync_interval_seconds = 30

# Find partner nodes on the same local network by mDNS (multicast). Many office networks
# block multicast; explicit peers above always work.
# mdns = true

# Members behind NAT (most offices on ADSL or 4G) are reached through members that are
# publicly reachable, which relay for them: "auto" serves once this node finds itself
# reachable from the internet, "on" always, "off" never. See docs/operator-guide.md.
# relay = "auto"

# Addresses partners reach this node on, if you know them (a port forwarded on the
# router, a DNS name): announced to members and taken as publicly reachable.
# external = ["/dns4/passerelle.example.cm/tcp/4690"]

# Turn a relayed connection into a direct one when both routers allow it (hole punching).
# hole_punching = true

# Ask the office router to forward a port to this node (UPnP), where the router allows it.
# upnp = true

[referrals]
# Days a case file received from another organisation stays readable here after its
# referral closes (completed, declined, failed, withdrawn, expired). Then its key is
# destroyed.
# retention_days = {DEFAULT_RETENTION_DAYS}

# Days the sending organisation keeps its own copy of a case file after the referral
# closes; then its key is destroyed too. Default: as retention_days.
# sender_retention_days = {DEFAULT_RETENTION_DAYS}

# The smallest count the referral reports show (page, `passerelle report`, JSON, CSV):
# smaller ones are written "<5", and others withheld ("x") so they cannot be recomputed
# from the totals. 1 shows every count.
# report_min_count = 5

[web]
# The officers' web page, served by `passerelle start` (accounts: `passerelle user add`).
# enabled = true

# Address and port. The default serves this computer only; any other address (an office
# LAN: "0.0.0.0:4691") is served over TLS only, with the certificate below or one made at
# first start (its fingerprint is printed for the officers to check).
# listen = "{DEFAULT_WEB_LISTEN}"
# certificate = "/etc/passerelle/web.crt"
# key = "/etc/passerelle/web.key"
# tls = false   # true: TLS even on 127.0.0.1

[notify]
# Notifications outside the page, ids and counts only (docs/web.md): a webhook called
# when the counts change, and a daily digest by e-mail through the office's server.
# webhook = "https://intranet.example.cm/passerelle"
# smtp = "smtp://passerelle@mail.example.cm:587"
# smtp_password_file = "/etc/passerelle/smtp-password"
# from = "passerelle@example.cm"
# to = ["coordination@example.cm"]
# digest_at = "07:00"
# utc_offset = "+01:00"

[metrics]
# Serve /metrics (OpenMetrics, for Prometheus) and /health on this address.
# listen = "127.0.0.1:9464"

[backup]
# Backups of the case files (`passerelle backup write`), sealed to a backup key whose
# secret half is kept off this computer (`passerelle backup key` makes one). Every erasure
# is also recorded in this folder, so a restore destroys what was erased since the backup.
# dir = "/var/backups/passerelle"
# public_key = "…"
"#
        )
    }
}

/// What the network layer needs.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Addresses to listen on, e.g. `/ip4/0.0.0.0/tcp/4690`.
    pub listen: Vec<libp2p::Multiaddr>,
    /// Peers to connect to and keep connected to.
    pub peers: Vec<libp2p::Multiaddr>,
    /// How often to run catch-up with every connected peer.
    pub sync_interval: std::time::Duration,
    /// Addresses partners reach this node on (`[network] external`).
    pub external: Vec<libp2p::Multiaddr>,
    /// Find peers on the local network by mDNS (multicast; off unless asked for).
    pub mdns: bool,
    /// Serve as a relay for members behind NAT.
    pub relay: RelayMode,
    /// Upgrade relayed connections to direct ones by hole punching (DCUtR).
    pub hole_punching: bool,
    /// Ask the router for a port mapping (UPnP IGD; multicast on the local network, so off
    /// unless asked for, like mDNS).
    pub upnp: bool,
    /// For tests only (feature `test-hooks`, which the release build never has): every
    /// application payload received (gossip messages, catch-up changes, admission
    /// requests, case-file messages) is appended here.
    #[cfg(feature = "test-hooks")]
    pub record_inbound: Option<InboundRecord>,
    /// For tests only (feature `test-hooks`): behave as a node of the release before sync
    /// digests — never ask by digest, and refuse the protocol when asked (the asker gets
    /// "unsupported protocol", as from an older node).
    #[cfg(feature = "test-hooks")]
    pub without_digest: bool,
}

/// Where the tests' `NetworkConfig::record_inbound` keeps what was received.
pub type InboundRecord = std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            peers: Vec::new(),
            external: Vec::new(),
            sync_interval: std::time::Duration::from_secs(30),
            mdns: false,
            relay: RelayMode::Auto,
            hole_punching: true,
            upnp: false,
            #[cfg(feature = "test-hooks")]
            record_inbound: None,
            #[cfg(feature = "test-hooks")]
            without_digest: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packaged_configuration_is_the_template() {
        let packaged = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/config.toml"),
        )
        .expect("packaging/config.toml");
        assert_eq!(
            packaged,
            ConfigFile::template(""),
            "packaging/config.toml is not the template of `passerelle init`: write it again \
             (cargo test -p passerelle-node write_the_packaged -- --ignored writes it)"
        );
    }

    #[test]
    #[ignore = "writes packaging/config.toml from the template"]
    fn write_the_packaged_configuration() {
        std::fs::write(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/config.toml"),
            ConfigFile::template(""),
        )
        .expect("write");
    }

    #[test]
    fn template_parses_and_names_the_organisation() {
        let file = ConfigFile::parse(&ConfigFile::template("Centre \"Espoir\"")).unwrap();
        assert_eq!(file.organisation.name.as_deref(), Some("Centre \"Espoir\""));
        let config = Config::new("/tmp/x").with_file(&file);
        assert_eq!(config.snapshot_every, DEFAULT_SNAPSHOT_EVERY);
    }

    #[test]
    fn network_section_layers_over_defaults() {
        let file = ConfigFile::parse("").unwrap();
        let network = Config::network_from_file(&file).unwrap().unwrap();
        assert_eq!(network.listen[0].to_string(), DEFAULT_LISTEN);
        assert!(network.peers.is_empty());
        let file = ConfigFile::parse(
            "[network]\npeers = [\"/dns4/node.example.cm/tcp/4690\"]\nsync_interval_seconds = 5\n",
        )
        .unwrap();
        let network = Config::network_from_file(&file).unwrap().unwrap();
        assert_eq!(network.peers.len(), 1);
        assert_eq!(network.sync_interval.as_secs(), 5);
        let off = ConfigFile::parse("[network]\nenabled = false\n").unwrap();
        assert!(Config::network_from_file(&off).unwrap().is_none());
        let bad = ConfigFile::parse("[network]\nlisten = [\"0.0.0.0:4690\"]\n").unwrap();
        let err = Config::network_from_file(&bad).unwrap_err();
        assert!(err.to_string().contains("network.listen"), "{err}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = ConfigFile::parse("[node]\nsnapshot_evry = 3\n").unwrap_err();
        assert!(err.to_string().contains("snapshot_evry"), "{err}");
        let file = ConfigFile::parse("[node]\nlang = \"en\"\n").unwrap();
        assert_eq!(file.node.lang, Some(Lang::En));
    }
}
