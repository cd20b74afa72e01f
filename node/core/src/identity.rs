//! Who a node speaks for: the organisation's signing key, its encryption key and its id.
//!
//! Rules:
//! - One 32-byte ed25519 secret is the organisation's signing key; its public half *is* the
//!   organisation id ([`OrgId`]). The same bytes seed the node's libp2p identity
//!   (`network::peer`).
//! - An X25519 secret receives case files encrypted end to end (referral issue).
//! - Secrets live in files with mode 0600 in `<data dir>/keys/` (written and read by
//!   [`crate::keys`]), are zeroized when dropped, and never appear in `Debug`, logs or
//!   error messages.
//! - Creating an identity never overwrites one that exists.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use data_encoding::BASE32_NOPAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Errors of identity creation, loading and parsing.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// An identity already exists where a new one was to be created.
    #[error("an identity already exists at {0} (refusing to overwrite it)")]
    AlreadyExists(PathBuf),
    /// No key file where one was expected.
    #[error("no identity at {0}: run `passerelle init` first")]
    Missing(PathBuf),
    /// A key file can be read by other users of the machine.
    #[error("key file {path} has mode {mode:o}; it must be readable by its owner only (chmod 600)")]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key file does not hold exactly 32 bytes.
    #[error("key file {0} is damaged: it must hold exactly 32 bytes")]
    BadKeyFile(PathBuf),
    /// Reading or writing a key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The system random source failed.
    #[error("the system random source failed: {0}")]
    Random(String),
    /// A key file is protected by a passphrase and none was given.
    #[error(
        "key file {0} is protected by a passphrase: give it (asked on the terminal, or the service's credential file $CREDENTIALS_DIRECTORY/passphrase)"
    )]
    Locked(PathBuf),
    /// The passphrase does not open a key file.
    #[error("the passphrase does not open key file {0}")]
    WrongPassphrase(PathBuf),
}

/// Errors parsing an organisation id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OrgIdError {
    /// Not 52 characters of base32.
    #[error("an organisation id is 52 characters of base32 (a-z, 2-7); got {0:?}")]
    Malformed(String),
    /// Not a valid ed25519 public key.
    #[error("{0:?} is not a valid organisation key")]
    NotAKey(String),
}

/// Most decompressed public keys [`decompressed`] keeps (about 200 bytes each); the cache
/// is emptied when full. A national network has about a thousand members.
const KEY_CACHE_ENTRIES: usize = 16_384;

/// The ed25519 public key of 32 raw bytes, `None` if they are not a point of the curve.
///
/// Decompressing a key costs a field inversion, about as much as half a signature
/// verification, and every received change names its author: the result is kept per key
/// bytes, process-wide. Decompression is a pure function of the bytes, so the cache can
/// only ever return what decompressing again would.
fn decompressed(bytes: &[u8; 32]) -> Option<VerifyingKey> {
    use std::collections::HashMap;
    use std::sync::{OnceLock, RwLock};
    static KEYS: OnceLock<RwLock<HashMap<[u8; 32], Option<VerifyingKey>>>> = OnceLock::new();
    let cache = KEYS.get_or_init(Default::default);
    if let Ok(keys) = cache.read()
        && let Some(key) = keys.get(bytes)
    {
        return *key;
    }
    let key = VerifyingKey::from_bytes(bytes).ok();
    if let Ok(mut keys) = cache.write() {
        if keys.len() >= KEY_CACHE_ENTRIES {
            keys.clear();
        }
        keys.insert(*bytes, key);
    }
    key
}

/// Defines a 32-byte ed25519 public key as an id: checked on creation, written as 52
/// lower-case base32 characters, parsed from them (any case), serialised as that text.
macro_rules! public_key_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 32]);

        impl $name {
            /// The id of the public key `key`.
            pub fn from_verifying_key(key: &VerifyingKey) -> Self {
                Self(key.to_bytes())
            }

            /// The id from raw public-key bytes; checks they are a valid key.
            pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, OrgIdError> {
                decompressed(&bytes).ok_or_else(|| {
                    OrgIdError::NotAKey(BASE32_NOPAD.encode(&bytes).to_lowercase())
                })?;
                Ok(Self(bytes))
            }

            /// The raw public key bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// The ed25519 public key.
            pub fn verifying_key(&self) -> Result<VerifyingKey, OrgIdError> {
                decompressed(&self.0).ok_or_else(|| OrgIdError::NotAKey(self.to_string()))
            }

            /// A short form to read out and compare: 16 base32 characters of SHA-256 of
            /// the key, in groups of four (`ABCD-EFGH-IJKL-MNOP`).
            pub fn fingerprint(&self) -> String {
                let digest = Sha256::digest(self.0);
                let text = BASE32_NOPAD.encode(&digest[..10]);
                text.as_bytes()
                    .chunks(4)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>()
                    .join("-")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&BASE32_NOPAD.encode(&self.0).to_lowercase())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.fingerprint())
            }
        }

        impl FromStr for $name {
            type Err = OrgIdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_key_text(s).and_then(Self::from_bytes)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                /// Parses the text where the deserializer holds it (no copy).
                struct Text;
                impl serde::de::Visitor<'_> for Text {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!($what, " (52 base32 characters)"))
                    }
                    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<$name, E> {
                        text.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(Text)
            }
        }
    };
}

/// The 32 bytes of a key written as 52 base32 characters (any case), decoded without
/// allocating (ids are parsed by the hundred thousand when a node reads its records).
fn parse_key_text(s: &str) -> Result<[u8; 32], OrgIdError> {
    let trimmed = s.trim();
    let malformed = || OrgIdError::Malformed(trimmed.to_owned());
    let mut upper = [0u8; 52];
    if trimmed.len() != upper.len() {
        return Err(malformed());
    }
    for (to, from) in upper.iter_mut().zip(trimmed.bytes()) {
        *to = from.to_ascii_uppercase();
    }
    let mut bytes = [0u8; 32];
    match BASE32_NOPAD.decode_len(upper.len()) {
        Ok(32) => {}
        _ => return Err(malformed()),
    }
    BASE32_NOPAD
        .decode_mut(&upper, &mut bytes)
        .map_err(|_| malformed())?;
    Ok(bytes)
}

public_key_id! {
    /// An organisation's id: its ed25519 public key (32 bytes), the key its own node signs
    /// with.
    ///
    /// Written as 52 lower-case base32 characters; [`OrgId::fingerprint`] gives a short form
    /// people can read out over the phone and compare.
    ///
    /// ```
    /// use passerelle_core::identity::OrgId;
    /// let id: OrgId = "3nqx6pd4uy6ccdtzmpdyqn34x3a5nhpzgvw5y7nr3r7f6vy6mbpa".parse().unwrap();
    /// assert_eq!(id.to_string().len(), 52);
    /// ```
    OrgId, "an organisation id"
}

public_key_id! {
    /// A signing key: an organisation's own key or one of its device keys (another node of
    /// the same organisation, authorised by it in the network document).
    ///
    /// A device key is not an organisation: what a key may write is decided by the
    /// membership ([`crate::membership::Membership::acting_member`]), never by reading the
    /// key as an organisation id. Same text form as [`OrgId`].
    KeyId, "a key id"
}

impl OrgId {
    /// The organisation's own signing key.
    pub fn key(&self) -> KeyId {
        KeyId(self.0)
    }
}

impl KeyId {
    /// The organisation whose *own* key this is. Only meaningful where the key is known to
    /// be an organisation's own (a founder's, a candidate's, a node that is not a device);
    /// a device key read this way names no organisation.
    pub fn as_own_org(&self) -> OrgId {
        OrgId(self.0)
    }
}

/// The organisation's ed25519 signing key. Zeroized on drop; `Debug` shows only the id.
pub struct SigningSecret(SigningKey);

impl SigningSecret {
    /// A new random key from the system's random source.
    pub fn generate() -> Result<Self, IdentityError> {
        let bytes = random_32()?;
        Ok(Self(SigningKey::from_bytes(&bytes)))
    }

    /// The key from its 32 secret bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(bytes))
    }

    /// The public key of this secret: the key id its changes name as their author.
    pub fn key_id(&self) -> KeyId {
        KeyId::from_verifying_key(&self.0.verifying_key())
    }

    /// The organisation this secret is the own key of (on a device node, an organisation
    /// that is not a member: the device acts for the organisation of its config).
    pub fn org_id(&self) -> OrgId {
        OrgId::from_verifying_key(&self.0.verifying_key())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        self.0.sign(message)
    }

    /// The 32 secret bytes (zeroized when dropped): for the key file, and for the
    /// transport key the network derives from the same secret. Never logged.
    pub fn to_secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningSecret(for {}, <redacted>)",
            self.org_id().fingerprint()
        )
    }
}

/// The organisation's X25519 secret, which case files are encrypted to. Zeroized on drop.
pub struct EncryptionSecret(x25519_dalek::StaticSecret);

impl EncryptionSecret {
    /// A new random key.
    pub fn generate() -> Result<Self, IdentityError> {
        let bytes = random_32()?;
        Ok(Self(x25519_dalek::StaticSecret::from(*bytes)))
    }

    /// The public half, which other organisations encrypt to.
    pub fn public_key(&self) -> EncryptionPublicKey {
        EncryptionPublicKey(x25519_dalek::PublicKey::from(&self.0).to_bytes())
    }

    fn to_secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }
}

impl fmt::Debug for EncryptionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionSecret(<redacted>)")
    }
}

/// An X25519 public key, written as 52 base32 characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncryptionPublicKey(pub [u8; 32]);

impl fmt::Display for EncryptionPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&BASE32_NOPAD.encode(&self.0).to_lowercase())
    }
}

impl fmt::Debug for EncryptionPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionPublicKey({self})")
    }
}

impl Serialize for EncryptionPublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for EncryptionPublicKey {
    type Err = OrgIdError;
    /// 52 base32 characters (any case), as `passerelle status` prints it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_key_text(s).map(Self)
    }
}

impl<'de> Deserialize<'de> for EncryptionPublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = BASE32_NOPAD
            .decode(text.to_ascii_uppercase().as_bytes())
            .map_err(serde::de::Error::custom)?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("an encryption key is 32 bytes"))?;
        Ok(Self(bytes))
    }
}

/// The keys a node acts with.
#[derive(Debug)]
pub struct Identity {
    signing: SigningSecret,
    encryption: EncryptionSecret,
}

impl Identity {
    /// A fresh identity (not yet written anywhere).
    pub fn generate() -> Result<Self, IdentityError> {
        Ok(Self {
            signing: SigningSecret::generate()?,
            encryption: EncryptionSecret::generate()?,
        })
    }

    /// The identity of these two secrets (read from key files).
    pub fn from_secret_bytes(signing: &[u8; 32], encryption: &[u8; 32]) -> Self {
        Self {
            signing: SigningSecret::from_bytes(signing),
            encryption: EncryptionSecret(x25519_dalek::StaticSecret::from(*encryption)),
        }
    }

    /// The encryption secret's bytes (zeroized when dropped), for its key file. Never
    /// logged.
    pub fn encryption_secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        self.encryption.to_secret_bytes()
    }

    /// The organisation id this node's key is the own key of.
    pub fn org_id(&self) -> OrgId {
        self.signing.org_id()
    }

    /// This node's signing key.
    pub fn key_id(&self) -> KeyId {
        self.signing.key_id()
    }

    /// The signing secret.
    pub fn signing(&self) -> &SigningSecret {
        &self.signing
    }

    /// The public encryption key.
    pub fn encryption_public_key(&self) -> EncryptionPublicKey {
        self.encryption.public_key()
    }

    /// X25519 agreement of this organisation's encryption key with `public`; `None` when
    /// the result is not contributory (a low-order public key).
    pub fn agree(&self, public: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
        let shared = self
            .encryption
            .0
            .diffie_hellman(&x25519_dalek::PublicKey::from(*public));
        shared
            .was_contributory()
            .then(|| Zeroizing::new(shared.to_bytes()))
    }
}

fn random_32() -> Result<Zeroizing<[u8; 32]>, IdentityError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut()).map_err(|e| IdentityError::Random(e.to_string()))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_id_round_trips_through_text() {
        let secret = SigningSecret::generate().unwrap();
        let id = secret.org_id();
        let text = id.to_string();
        assert_eq!(text.len(), 52);
        assert_eq!(text.parse::<OrgId>().unwrap(), id);
        assert_eq!(text.to_uppercase().parse::<OrgId>().unwrap(), id);
        assert_eq!(id.fingerprint().len(), 19);
    }

    #[test]
    fn malformed_org_ids_are_refused() {
        assert!(matches!(
            "abc".parse::<OrgId>(),
            Err(OrgIdError::Malformed(_))
        ));
        assert!(matches!(
            "1".repeat(52).parse::<OrgId>(),
            Err(OrgIdError::Malformed(_))
        ));
    }

    #[test]
    fn debug_never_shows_secret_bytes() {
        let identity = Identity::generate().unwrap();
        let secret_hex: String = identity
            .signing
            .to_secret_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let shown = format!("{identity:?}");
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(&secret_hex));
        assert!(!shown.contains(&format!(
            "{:?}",
            identity.signing.to_secret_bytes().as_ref()
        )));
    }
}
