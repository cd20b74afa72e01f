//! Identifiers shared by every layer, as newtypes.
//!
//! Rules:
//! - An id is parsed once, where it enters (a CLI argument, a received message), and
//!   travels typed; its text form is the one people see and type.

use std::fmt;
use std::str::FromStr;

use automerge::ChangeHash;
use data_encoding::BASE32_NOPAD;
use serde::{Deserialize, Serialize};

use crate::identity::OrgId;

/// Longest document id, in bytes.
pub const MAX_DOCUMENT_ID_BYTES: usize = 128;
/// Bytes of the genesis hash that make the network id.
const NETWORK_ID_BYTES: usize = 20;

/// A text that is not an id of the kind asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidId {
    /// Which id.
    pub field: &'static str,
    /// What is wrong and what is accepted.
    pub message: String,
}

/// A network's id: 20 bytes of its genesis change's hash, in lower-case base32 (32 chars).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetworkId([u8; NETWORK_ID_BYTES]);

impl NetworkId {
    /// The id of the network whose genesis change has this hash.
    pub fn from_genesis(hash: &ChangeHash) -> Self {
        let mut bytes = [0u8; NETWORK_ID_BYTES];
        bytes.copy_from_slice(&hash.0[..NETWORK_ID_BYTES]);
        Self(bytes)
    }

    /// True if `hash` is the genesis of this network.
    pub fn is_genesis(&self, hash: &ChangeHash) -> bool {
        hash.0[..NETWORK_ID_BYTES] == self.0
    }

    /// The id of the network document.
    pub fn document_id(&self) -> DocumentId {
        DocumentId::network(self)
    }
}

impl fmt::Display for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&BASE32_NOPAD.encode(&self.0).to_lowercase())
    }
}

impl fmt::Debug for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetworkId({self})")
    }
}

impl FromStr for NetworkId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim().to_ascii_uppercase();
        let bytes = BASE32_NOPAD
            .decode(text.as_bytes())
            .ok()
            .and_then(|b| <[u8; NETWORK_ID_BYTES]>::try_from(b).ok())
            .ok_or_else(|| InvalidId {
                field: "network id",
                message: format!(
                    "{s:?} is not a network id (32 base32 characters, as `passerelle network show` prints)"
                ),
            })?;
        Ok(Self(bytes))
    }
}

impl Serialize for NetworkId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NetworkId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Errors of document ids.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DocumentIdError {
    /// Empty, too long or with characters outside `[a-z0-9:/_-]`.
    #[error("document id {0:?} must be 1 to 128 characters of a-z, 0-9, ':', '/', '_' or '-'")]
    Malformed(String),
}

/// The id of a replicated document, e.g. `org/<organisation id>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DocumentId(String);

impl DocumentId {
    /// The document an organisation writes its profile, offices and services into.
    pub fn organisation(org: &OrgId) -> Self {
        Self(format!("org/{org}"))
    }

    /// The network document of a network.
    pub fn network(network: &NetworkId) -> Self {
        // Lower-case base32 is always a valid document id.
        Self(format!("net/{network}"))
    }

    /// The network whose network document this is, if it is one.
    pub fn network_owner(&self) -> Option<NetworkId> {
        self.0
            .strip_prefix("net/")
            .and_then(|rest| rest.parse().ok())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The organisation whose own document this is, if it is one.
    pub fn organisation_owner(&self) -> Option<OrgId> {
        self.0
            .strip_prefix("org/")
            .and_then(|rest| rest.parse().ok())
    }
}

impl TryFrom<String> for DocumentId {
    type Error = DocumentIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let ok = !value.is_empty()
            && value.len() <= MAX_DOCUMENT_ID_BYTES
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b":/_-".contains(&b));
        if ok {
            Ok(Self(value))
        } else {
            Err(DocumentIdError::Malformed(value))
        }
    }
}

impl std::str::FromStr for DocumentId {
    type Err = DocumentIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_owned())
    }
}

impl From<DocumentId> for String {
    fn from(id: DocumentId) -> Self {
        id.0
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({})", self.0)
    }
}
