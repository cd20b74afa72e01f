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

/// Bytes of a referral id.
const REFERRAL_ID_BYTES: usize = 12;

/// A referral's id: `ref-` and 24 lower-case hex digits (12 random bytes), held as its
/// bytes, whose order is the order of the text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReferralId([u8; REFERRAL_ID_BYTES]);

impl ReferralId {
    /// The id made of these (random) bytes.
    pub fn from_bytes(bytes: [u8; REFERRAL_ID_BYTES]) -> Self {
        Self(bytes)
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; REFERRAL_ID_BYTES] {
        &self.0
    }

    /// The id, if `text` is a well-formed referral id (exactly: no spaces, lower case).
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix("ref-")?.as_bytes();
        if hex.len() != 2 * REFERRAL_ID_BYTES {
            return None;
        }
        let digit = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        };
        let mut bytes = [0u8; REFERRAL_ID_BYTES];
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks(2)) {
            *byte = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Some(Self(bytes))
    }
}

impl fmt::Display for ReferralId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ref-")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ReferralId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReferralId({self})")
    }
}

impl FromStr for ReferralId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.trim()).ok_or_else(|| InvalidId {
            field: "referral id",
            message: format!(
                "{s:?} is not a referral id (`ref-` and 24 hex digits, as `passerelle referral list` prints)"
            ),
        })
    }
}

impl Serialize for ReferralId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ReferralId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Parses the text where the deserializer holds it (no copy).
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = ReferralId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a referral id (`ref-` and 24 hex digits)")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ReferralId, E> {
                text.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Text)
    }
}

/// Longest office or service id, in bytes.
pub const MAX_ENTRY_ID_BYTES: usize = 64;

/// A service's id within its organisation's document (`svc-…` when the node draws it; a
/// coordinator's import may bring its own): 1 to 64 characters of a-z, 0-9, '-' or '_'.
/// A service is named across the network by its organisation and this id.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServiceId(String);

impl ServiceId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True if `text` is a well-formed office or service id.
    pub fn is_well_formed(text: &str) -> bool {
        (1..=MAX_ENTRY_ID_BYTES).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    }
}

impl TryFrom<String> for ServiceId {
    type Error = InvalidId;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        if Self::is_well_formed(&text) {
            Ok(Self(text))
        } else {
            Err(InvalidId {
                field: "service id",
                message: format!(
                    "{text:?} is not a service id (1 to {MAX_ENTRY_ID_BYTES} characters of a-z, 0-9, '-' or '_', as `passerelle directory show` prints)"
                ),
            })
        }
    }
}

impl FromStr for ServiceId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.trim().to_owned())
    }
}

impl From<ServiceId> for String {
    fn from(id: ServiceId) -> Self {
        id.0
    }
}

impl std::borrow::Borrow<str> for ServiceId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referral_ids_round_trip_and_order_as_their_text() {
        let texts = [
            "ref-000000000000000000000000",
            "ref-00000000000000000000000f",
            "ref-0123456789abcdef01234567",
            "ref-ffffffffffffffffffffffff",
        ];
        let ids: Vec<ReferralId> = texts.iter().map(|t| t.parse().expect("id")).collect();
        for (id, text) in ids.iter().zip(texts) {
            assert_eq!(id.to_string(), text);
            let json = serde_json::to_string(id).expect("json");
            assert_eq!(
                serde_json::from_str::<ReferralId>(&json).expect("back"),
                *id
            );
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn malformed_referral_and_service_ids_name_what_is_accepted() {
        for bad in [
            "ref-1",
            "REF-0123456789abcdef01234567",
            "ref-0123456789ABCDEF01234567",
            "ref-0123456789abcdef0123456g",
            "svc-1",
        ] {
            let error = bad.parse::<ReferralId>().expect_err(bad);
            assert_eq!(error.field, "referral id");
            assert!(error.message.contains("24 hex digits"), "{error}");
        }
        assert!(serde_json::from_str::<ReferralId>("\"ref-1\"").is_err());
        for bad in ["", "Svc-1", "svc 1", "svc/1", &"a".repeat(65)] {
            let error = bad.parse::<ServiceId>().expect_err(bad);
            assert_eq!(error.field, "service id");
        }
        let id: ServiceId = "svc-1a_b".parse().expect("id");
        assert_eq!(
            serde_json::to_string(&id).expect("json"),
            "\"svc-1a_b\"".to_owned()
        );
        assert!(serde_json::from_str::<ServiceId>("\"svc 1\"").is_err());
    }
}
