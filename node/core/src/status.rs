//! What a node reports of itself, as plain types (`passerelle status`, `passerelle peers`).

use serde::{Deserialize, Serialize};

/// One connected peer, as `passerelle peers` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// libp2p peer id.
    pub peer_id: String,
    /// The organisation whose key the peer uses.
    pub org_id: Option<String>,
    /// Its fingerprint.
    pub fingerprint: Option<String>,
    /// Addresses of the open connections.
    pub addresses: Vec<String>,
    /// Unix time of the last completed catch-up with it.
    pub last_sync: Option<i64>,
    /// Its gossipsub score (negative after misbehaviour).
    pub score: Option<f64>,
    /// Changes it sent that were refused.
    pub rejected: u64,
    /// Round trip of the last ping it answered, in milliseconds.
    #[serde(default)]
    pub rtt_ms: Option<u64>,
    /// Whether its connection carries gossip (it acts for a member).
    #[serde(default)]
    pub gossip: bool,
    /// Whether every open connection with it goes through a relay (no direct path).
    #[serde(default)]
    pub relayed: bool,
}

/// The network side of `passerelle status` and `passerelle peers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkStatus {
    /// Whether networking runs.
    pub enabled: bool,
    /// This node's peer id.
    pub peer_id: String,
    /// Addresses it listens on.
    pub listen_addrs: Vec<String>,
    /// Connected peers.
    pub peers: Vec<PeerStatus>,
    /// Bytes of signed changes received in catch-up responses since start.
    pub sync_bytes_received: u64,
    /// Bytes of signed changes sent in catch-up responses since start.
    pub sync_bytes_sent: u64,
    /// Bytes of signed changes received by gossip since start.
    pub gossip_bytes_received: u64,
    /// Connections refused at the gate since start (a busy address, too many non-members,
    /// a peer id that is not an ed25519 key).
    #[serde(default)]
    pub connections_refused: u64,
    /// Peers cut off since start (too many refused changes or requests; a gossip score so
    /// low that gossipsub ignores them): their connections are refused for ten minutes.
    #[serde(default)]
    pub peers_cut_off: u64,
    /// Network work shed since start because [`crate::network::MAX_TASKS`] tasks were running (asked
    /// again later by the peer or the next round).
    #[serde(default)]
    pub tasks_shed: u64,
    /// Catch-up rounds of this node that a digest settled since start: the peer held the
    /// same documents at the same heads, so no heads were listed.
    #[serde(default)]
    pub sync_rounds_in_step: u64,
    /// Catch-up rounds of this node that listed its heads since start (something
    /// differed, or the peer does not speak the digest protocol).
    #[serde(default)]
    pub sync_rounds_listed: u64,
    /// Whether this node is reachable from the internet, as its peers found (AutoNAT):
    /// "public", "private" (behind NAT or a firewall) or "unknown".
    #[serde(default)]
    pub reachability: String,
    /// Relays holding a slot for this node (peer ids): members reach it through them.
    #[serde(default)]
    pub relays: Vec<String>,
    /// Whether this node serves as a relay for members behind NAT now.
    #[serde(default)]
    pub relay_serving: bool,
    /// As a relay: members holding a slot here now.
    #[serde(default)]
    pub relay_reservations: u64,
    /// As a relay: circuits carried now.
    #[serde(default)]
    pub relay_circuits: u64,
    /// As a relay: circuits carried since start.
    #[serde(default)]
    pub relay_circuits_served: u64,
    /// As a relay: reservations and circuits refused since start (non-members, limits).
    #[serde(default)]
    pub relay_refused: u64,
    /// Relayed connections made direct by hole punching since start.
    #[serde(default)]
    pub hole_punched: u64,
}
