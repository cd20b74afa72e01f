//! An organisation's key as a libp2p identity: a node's peer id is its organisation's (or
//! device's) ed25519 key, so a peer id names an organisation.

use libp2p::PeerId;

use crate::identity::{OrgId, SigningSecret};

/// The libp2p side of organisation ids.
pub trait PeerIdentity: Sized {
    /// The libp2p peer id of this organisation's node (the same ed25519 key).
    fn peer_id(&self) -> PeerId;
    /// The organisation whose node has this peer id, if the peer id is an ed25519 key.
    fn from_peer_id(peer: &PeerId) -> Option<Self>;
}

impl PeerIdentity for OrgId {
    fn peer_id(&self) -> PeerId {
        match libp2p::identity::ed25519::PublicKey::try_from_bytes(self.as_bytes()) {
            Ok(key) => libp2p::identity::PublicKey::from(key).to_peer_id(),
            // Every OrgId is checked to be a valid key when it is made.
            Err(_) => PeerId::random(),
        }
    }

    fn from_peer_id(peer: &PeerId) -> Option<Self> {
        let multihash = peer.as_ref();
        // Identity multihash of the protobuf-encoded public key: the last 32 bytes.
        let digest = multihash.digest();
        let key = libp2p::identity::PublicKey::try_decode_protobuf(digest).ok()?;
        let bytes = key.try_into_ed25519().ok()?.to_bytes();
        OrgId::from_bytes(bytes).ok()
    }
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
    }
}
