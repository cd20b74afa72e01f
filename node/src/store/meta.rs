//! What the store keeps beside the documents: the network this node belongs to and its
//! seed file, the organisation of a device node, bootstrap peers, admission requests, and
//! where members' nodes were last reached (so a restarted node dials them again).

use std::path::Path;

use super::{
    BOOTSTRAP_KEY, MAX_ADMISSION_REQUESTS, NETWORK_KEY, ORGANISATION_KEY, OWN_AWAITED_KEY,
    OWN_REQUEST_KEY, RECOVERY_PENDING_KEY, SEED_FILE, Store, StoreError,
};
use std::collections::BTreeMap;

use crate::identity::{KeyId, OrgId};
use crate::referral::board::{Arrival, MovePlace};

/// What `store/seed.json` holds: enough to rebuild a store whose database cannot be opened
/// for the right network (`passerelle repair`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Seed {
    /// The network id.
    #[serde(default)]
    pub network: Option<String>,
    /// Peer addresses recorded from invitations.
    #[serde(default)]
    pub bootstrap_peers: Vec<String>,
    /// On a device node: its organisation.
    #[serde(default)]
    pub device_of: Option<String>,
    /// The recovery key made at `init` and not yet registered in the network document: a
    /// rebuilt store still registers it (its secret is offline, with the organisation).
    #[serde(default)]
    pub recovery_key_pending: Option<String>,
}

impl Seed {
    /// Reads the seed kept in store folder `path`, if there is one.
    pub fn read(path: &Path) -> Option<Self> {
        std::fs::read(path.join(SEED_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
    }
}

impl Store {
    /// The network this node belongs to, if it has created or joined one.
    pub fn network(&self) -> Result<Option<crate::membership::NetworkId>, StoreError> {
        match self.meta.get(NETWORK_KEY)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8_lossy(&bytes).parse().map(Some).map_err(
                |e: crate::ids::InvalidId| StoreError::Corrupt {
                    key: "meta/network".into(),
                    reason: e.to_string(),
                },
            ),
        }
    }

    /// Records the network this node belongs to, with peers to start from. A node belongs
    /// to one network: setting another is refused.
    pub fn set_network(
        &self,
        network: &crate::membership::NetworkId,
        bootstrap: &[String],
    ) -> Result<(), StoreError> {
        if let Some(existing) = self.network()?
            && existing != *network
        {
            return Err(StoreError::Corrupt {
                key: "meta/network".into(),
                reason: format!(
                    "this node already belongs to network {existing}; a node belongs to one network (use another data folder)"
                ),
            });
        }
        self.meta
            .insert(NETWORK_KEY, network.to_string().as_bytes())?;
        let mut peers = self.bootstrap_peers()?;
        for peer in bootstrap {
            if !peers.contains(peer) {
                peers.push(peer.clone());
            }
        }
        self.meta.insert(
            BOOTSTRAP_KEY,
            serde_json::to_vec(&peers).unwrap_or_default(),
        )?;
        self.syncer.flush()?;
        self.write_seed()
    }

    /// True when `passerelle repair` set this node's own document aside: the node starts
    /// without it and takes it back from its peers.
    pub fn own_document_awaited(&self) -> Result<bool, StoreError> {
        Ok(self.meta.contains_key(OWN_AWAITED_KEY)?)
    }

    /// Records that the node's own document is awaited from peers (or, with `false`, that
    /// it came back).
    pub fn set_own_document_awaited(&self, awaited: bool) -> Result<(), StoreError> {
        if awaited {
            self.meta.insert(OWN_AWAITED_KEY, &[1u8])?;
        } else {
            self.meta.remove(OWN_AWAITED_KEY)?;
        }
        self.syncer.flush()?;
        Ok(())
    }

    /// Writes [`Seed`] beside the database (atomically: a temporary file renamed), so that a
    /// store whose database no longer opens can still be rebuilt for the right network.
    pub(super) fn write_seed(&self) -> Result<(), StoreError> {
        let seed = Seed {
            network: self.network()?.map(|n| n.to_string()),
            bootstrap_peers: self.bootstrap_peers()?,
            device_of: self.device_of()?.map(|o| o.to_string()),
            recovery_key_pending: self.recovery_pending()?.map(|k| k.to_string()),
        };
        let bytes = serde_json::to_vec_pretty(&seed).unwrap_or_default();
        let io = |source: std::io::Error| StoreError::Open {
            path: self.path.display().to_string(),
            source: sled::Error::Io(source),
        };
        crate::durable::write_file_atomically(&self.path.join(SEED_FILE), &bytes, 0o600).map_err(io)
    }

    /// On a device node: the organisation it writes for (None on an organisation's node).
    pub fn device_of(&self) -> Result<Option<OrgId>, StoreError> {
        match self.meta.get(ORGANISATION_KEY)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8_lossy(&bytes).parse().map(Some).map_err(
                |e: crate::identity::OrgIdError| StoreError::Corrupt {
                    key: "meta/device-of".into(),
                    reason: e.to_string(),
                },
            ),
        }
    }

    /// Records that this node is a device of `org`.
    pub fn set_device_of(&self, org: &OrgId) -> Result<(), StoreError> {
        self.meta
            .insert(ORGANISATION_KEY, org.to_string().as_bytes())?;
        self.syncer.flush()?;
        self.write_seed()
    }

    /// The recovery key made at `init`, not yet registered in the network document.
    pub fn recovery_pending(&self) -> Result<Option<KeyId>, StoreError> {
        match self.meta.get(RECOVERY_PENDING_KEY)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8_lossy(&bytes).parse().map(Some).map_err(
                |e: crate::identity::OrgIdError| StoreError::Corrupt {
                    key: "meta/recovery-key-pending".into(),
                    reason: e.to_string(),
                },
            ),
        }
    }

    /// Records (or, with `None`, forgets) the recovery key still to register.
    pub fn set_recovery_pending(&self, key: Option<&KeyId>) -> Result<(), StoreError> {
        match key {
            Some(key) => {
                self.meta
                    .insert(RECOVERY_PENDING_KEY, key.to_string().as_bytes())?;
            }
            None => {
                self.meta.remove(RECOVERY_PENDING_KEY)?;
            }
        }
        self.syncer.flush()?;
        self.write_seed()
    }

    /// Peer addresses recorded from invitations.
    pub fn bootstrap_peers(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .meta
            .get(BOOTSTRAP_KEY)?
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default())
    }

    /// This node's own admission request (JSON), if it made one.
    pub fn own_request(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(OWN_REQUEST_KEY)?.map(|v| v.to_vec()))
    }

    /// Records this node's own admission request.
    pub fn set_own_request(&self, request: &[u8]) -> Result<(), StoreError> {
        self.meta.insert(OWN_REQUEST_KEY, request)?;
        self.syncer.flush()?;
        Ok(())
    }

    /// Keeps an admission request received from a candidate (one per organisation, the
    /// latest). Returns false when the inbox is full.
    pub fn put_admission_request(&self, org: &OrgId, request: &[u8]) -> Result<bool, StoreError> {
        let key = org.as_bytes();
        if !self.requests.contains_key(key)? && self.requests.len() >= MAX_ADMISSION_REQUESTS {
            return Ok(false);
        }
        self.requests.insert(key, request)?;
        self.syncer.flush()?;
        Ok(true)
    }

    /// Admission requests received, raw (JSON of signed requests).
    pub fn admission_requests(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        for entry in self.requests.iter() {
            out.push(entry?.1.to_vec());
        }
        Ok(out)
    }

    /// The request a candidate sent, if this node holds one.
    pub fn admission_request(&self, org: &OrgId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.requests.get(org.as_bytes())?.map(|v| v.to_vec()))
    }

    /// Drops a candidate's request (once proposed).
    pub fn remove_admission_request(&self, org: &OrgId) -> Result<(), StoreError> {
        self.requests.remove(org.as_bytes())?;
        self.syncer.flush()?;
        Ok(())
    }

    /// Remembers where `key`'s node listens, as seen at `seen` (Unix seconds): at most
    /// [`MAX_ADDRESSES_PER_PEER`] addresses, at most [`MAX_REMEMBERED_PEERS`] peers (the
    /// one seen longest ago forgotten first). Not flushed: addresses are a hint, and what
    /// a power cut loses of them the next connection teaches again.
    pub fn remember_addresses(
        &self,
        key: &KeyId,
        addresses: &[String],
        seen: i64,
    ) -> Result<(), StoreError> {
        let entry = PeerAddresses {
            key: *key,
            addresses: addresses
                .iter()
                .take(MAX_ADDRESSES_PER_PEER)
                .cloned()
                .collect(),
            seen,
        };
        let bytes = serde_json::to_vec(&entry).map_err(|e| StoreError::Corrupt {
            key: format!("peer-addresses/{key}"),
            reason: e.to_string(),
        })?;
        self.addresses.insert(key.as_bytes(), bytes)?;
        if self.addresses.len() > MAX_REMEMBERED_PEERS {
            // One over the bound (one insertion at a time): forget the one seen longest ago.
            let oldest = self
                .remembered_addresses()?
                .into_iter()
                .rev()
                .map(|p| p.key)
                .find(|k| k != key);
            if let Some(old) = oldest {
                self.addresses.remove(old.as_bytes())?;
            }
        }
        Ok(())
    }

    /// Where peers were last reached, the most recently seen first. An entry that does
    /// not read is left out (and reported by `Store::check`'s count of records only).
    pub fn remembered_addresses(&self) -> Result<Vec<PeerAddresses>, StoreError> {
        let mut out = Vec::new();
        for entry in self.addresses.iter() {
            let (_, value) = entry?;
            if let Ok(peer) = serde_json::from_slice::<PeerAddresses>(&value) {
                out.push(peer);
            }
        }
        out.sort_by(|a, b| b.seen.cmp(&a.seen).then_with(|| a.key.cmp(&b.key)));
        Ok(out)
    }
}

/// Most peers whose addresses a store remembers.
pub const MAX_REMEMBERED_PEERS: usize = 256;
/// Most addresses remembered for one peer.
pub const MAX_ADDRESSES_PER_PEER: usize = 8;

/// Where a peer's node was last reached.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeerAddresses {
    /// The node's key (its peer id).
    pub key: KeyId,
    /// The addresses it listens on, as it said (identify).
    pub addresses: Vec<String>,
    /// When, in Unix seconds.
    pub seen: i64,
}

impl Store {
    fn arrival_key(referral: &str, place: MovePlace) -> Vec<u8> {
        let mut key = referral.as_bytes().to_vec();
        key.push(0);
        let (side, n) = match place {
            MovePlace::Sender(n) => (b's', n),
            MovePlace::Receiver(n) => (b'r', n),
        };
        key.push(side);
        key.extend_from_slice(&n.to_be_bytes());
        key
    }

    /// Records a noteworthy arrival of a move (the first one stays); true if it was not
    /// recorded before.
    pub fn record_arrival(
        &self,
        referral: &str,
        place: MovePlace,
        arrival: &Arrival,
    ) -> Result<bool, StoreError> {
        let value = serde_json::to_vec(arrival).unwrap_or_default();
        let swapped = self.arrivals.compare_and_swap(
            Self::arrival_key(referral, place),
            None::<&[u8]>,
            Some(value),
        )?;
        Ok(swapped.is_ok())
    }

    /// The noteworthy arrivals of one referral's moves, by place.
    pub fn arrivals_of(&self, referral: &str) -> Result<BTreeMap<MovePlace, Arrival>, StoreError> {
        let mut prefix = referral.as_bytes().to_vec();
        prefix.push(0);
        let mut found = BTreeMap::new();
        for item in self.arrivals.scan_prefix(&prefix) {
            let (key, value) = item?;
            if let (Some(place), Ok(arrival)) = (
                Self::arrival_place(&key[prefix.len()..]),
                serde_json::from_slice(&value),
            ) {
                found.insert(place, arrival);
            }
        }
        Ok(found)
    }

    /// Every referral with a noteworthy arrival, and those arrivals.
    pub fn all_arrivals(
        &self,
    ) -> Result<BTreeMap<String, BTreeMap<MovePlace, Arrival>>, StoreError> {
        let mut referrals: BTreeMap<String, BTreeMap<MovePlace, Arrival>> = BTreeMap::new();
        for item in self.arrivals.iter() {
            let (key, value) = item?;
            let Some(end) = key.iter().position(|b| *b == 0) else {
                continue;
            };
            let referral = String::from_utf8_lossy(&key[..end]).into_owned();
            if let (Some(place), Ok(arrival)) = (
                Self::arrival_place(&key[end + 1..]),
                serde_json::from_slice(&value),
            ) {
                referrals
                    .entry(referral)
                    .or_default()
                    .insert(place, arrival);
            }
        }
        Ok(referrals)
    }

    /// The place a key's end names (`s` or `r`, then a big-endian u32).
    fn arrival_place(rest: &[u8]) -> Option<MovePlace> {
        let (&side, n) = rest.split_first()?;
        let n = u32::from_be_bytes(n.try_into().ok()?);
        match side {
            b's' => Some(MovePlace::Sender(n)),
            b'r' => Some(MovePlace::Receiver(n)),
            _ => None,
        }
    }
}
