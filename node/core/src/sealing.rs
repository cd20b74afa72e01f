//! Sealing to an X25519 public key, the one construction case files and case-file backups
//! share: an ephemeral X25519 key agreement, a key derived by HKDF-SHA256 (salt: the
//! ephemeral public key ‖ the recipient's; `info`: what is sealed), and ChaCha20-Poly1305
//! over the plaintext with `aad` bound to it.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Why sealing or opening failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealingError {
    /// The key agreement gave nothing usable (a low-order key).
    BadKey,
    /// Tampered, or not sealed to this key.
    Decrypt,
    /// No randomness.
    Random(String),
}

/// A sealed plaintext's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The ephemeral X25519 public key.
    pub ephemeral: [u8; 32],
    /// The ChaCha20-Poly1305 nonce.
    pub nonce: [u8; 12],
    /// The ciphertext and its tag.
    pub ciphertext: Vec<u8>,
}

fn derive(
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    recipient: &[u8; 32],
    info: &[u8],
) -> Zeroizing<[u8; 32]> {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral);
    salt[32..].copy_from_slice(recipient);
    let hkdf = hkdf::Hkdf::<Sha256>::new(Some(&salt), shared);
    let mut key = Zeroizing::new([0u8; 32]);
    // 32 bytes is a valid HKDF-SHA256 output length.
    let _ = hkdf.expand(info, key.as_mut());
    key
}

/// Seals `plaintext` to the X25519 public key `recipient`.
pub fn seal(
    plaintext: &[u8],
    recipient: &[u8; 32],
    info: &[u8],
    aad: &[u8],
) -> Result<Sealed, SealingError> {
    let mut secret = Zeroizing::new([0u8; 32]);
    getrandom::fill(secret.as_mut()).map_err(|e| SealingError::Random(e.to_string()))?;
    let ephemeral = x25519_dalek::StaticSecret::from(*secret);
    let ephemeral_public = x25519_dalek::PublicKey::from(&ephemeral).to_bytes();
    let shared = ephemeral.diffie_hellman(&x25519_dalek::PublicKey::from(*recipient));
    if !shared.was_contributory() {
        return Err(SealingError::BadKey);
    }
    let key = derive(shared.as_bytes(), &ephemeral_public, recipient, info);
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).map_err(|e| SealingError::Random(e.to_string()))?;
    let ciphertext = ChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| SealingError::Decrypt)?;
    Ok(Sealed {
        ephemeral: ephemeral_public,
        nonce,
        ciphertext,
    })
}

/// Opens what was sealed to `recipient`, given the key agreement `shared` of its secret
/// with the sealed ephemeral key (the holder of the secret computes it).
pub fn open(
    sealed: &Sealed,
    shared: &[u8; 32],
    recipient: &[u8; 32],
    info: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealingError> {
    let key = derive(shared, &sealed.ephemeral, recipient, info);
    ChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
        .decrypt(
            Nonce::from_slice(&sealed.nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| SealingError::Decrypt)
}
