//! A signing key as a libp2p identity: a node's peer id is its ed25519 key, its
//! organisation's own ([`OrgId`]) or a device's ([`KeyId`]); which organisation a key acts
//! for is the membership's answer, not the peer id's.

use libp2p::PeerId;

use crate::identity::{KeyId, OrgId, SigningSecret};

/// The libp2p side of key ids.
pub trait PeerIdentity: Sized {
    /// The libp2p peer id of the node that signs with this key (the same ed25519 key).
    fn peer_id(&self) -> PeerId;
    /// The key of the node that has this peer id, if the peer id is an ed25519 key.
    fn from_peer_id(peer: &PeerId) -> Option<Self>;
}

/// Implements [`PeerIdentity`] for a 32-byte ed25519 public key id.
macro_rules! peer_identity {
    ($id:ty) => {
        impl PeerIdentity for $id {
            fn peer_id(&self) -> PeerId {
                match libp2p::identity::ed25519::PublicKey::try_from_bytes(self.as_bytes()) {
                    Ok(key) => libp2p::identity::PublicKey::from(key).to_peer_id(),
                    // Every id is checked to be a valid key when it is made.
                    Err(_) => PeerId::random(),
                }
            }

            fn from_peer_id(peer: &PeerId) -> Option<Self> {
                <$id>::from_bytes(ed25519_bytes(peer)?).ok()
            }
        }
    };
}

peer_identity!(OrgId);
peer_identity!(KeyId);

/// The ed25519 public key a peer id is made of (an identity multihash of the
/// protobuf-encoded key), if it is one.
fn ed25519_bytes(peer: &PeerId) -> Option<[u8; 32]> {
    let key = libp2p::identity::PublicKey::try_decode_protobuf(peer.as_ref().digest()).ok()?;
    Some(key.try_into_ed25519().ok()?.to_bytes())
}

/// The libp2p identity built from the same 32 secret bytes (the node's peer id is the
/// organisation's key).
pub fn keypair(secret: &SigningSecret) -> libp2p::identity::Keypair {
    let mut bytes = secret.to_secret_bytes();
    match libp2p::identity::Keypair::ed25519_from_bytes(bytes.as_mut()) {
        Ok(keypair) => keypair,
        // 32 bytes are always a valid ed25519 secret.
        Err(_) => libp2p::identity::Keypair::generate_ed25519(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_id_is_the_organisation_key() {
        let secret = SigningSecret::generate().expect("key");
        let peer = keypair(&secret).public().to_peer_id();
        assert_eq!(peer, secret.org_id().peer_id());
        assert_eq!(OrgId::from_peer_id(&peer), Some(secret.org_id()));
        assert_eq!(KeyId::from_peer_id(&peer), Some(secret.key_id()));
        assert_eq!(secret.key_id().peer_id(), peer);
    }
}
