//! Sealing a backup of case files to a backup key: an X25519 key pair of its own, whose
//! secret half is kept off the node (printed once, stored where the organisation keeps its
//! other recovery secrets). The node holds only the public half, so a copy of its data
//! folder, or of its backups, opens no case file; and a backup is useless without the
//! secret that only the people allowed to restore hold.
//!
//! A sealed backup is `PASSERELLE-CASE-FILES-BACKUP-1\n`, the ephemeral public key (32
//! bytes), the nonce (12) and the ChaCha20-Poly1305 ciphertext, its key derived by
//! HKDF-SHA256 from the X25519 agreement.

use data_encoding::BASE32_NOPAD;
use zeroize::Zeroizing;

use crate::identity::EncryptionPublicKey;

/// What a sealed backup starts with.
pub const MAGIC: &[u8] = b"PASSERELLE-CASE-FILES-BACKUP-1\n";
/// What the backup secret's text starts with.
pub const SECRET_PREFIX: &str = "passerelle-backup-secret-";

const INFO: &[u8] = b"passerelle case-files backup v1";

/// Why a backup does not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BackupSealError {
    /// Not a sealed backup of case files.
    #[error("not a backup of case files written by `passerelle backup write`")]
    NotABackup,
    /// Not sealed to this secret, or altered.
    #[error(
        "the backup does not open with this secret (another backup key, or the file was altered)"
    )]
    WrongKeyOrAltered,
    /// The secret's text is not one.
    #[error("not a backup secret (it starts with {SECRET_PREFIX} and holds 52 base32 characters)")]
    NotASecret,
    /// The key agreement gave nothing usable.
    #[error("the backup key is not usable")]
    BadKey,
    /// No randomness.
    #[error("the system's random source failed: {0}")]
    Random(String),
}

/// The secret half of a backup key. Zeroized on drop.
pub struct BackupSecret(x25519_dalek::StaticSecret);

impl std::fmt::Debug for BackupSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupSecret(<redacted>)")
    }
}

impl BackupSecret {
    /// A new random backup key.
    pub fn generate() -> Result<Self, BackupSealError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(|e| BackupSealError::Random(e.to_string()))?;
        Ok(Self(x25519_dalek::StaticSecret::from(*bytes)))
    }

    /// The public half, which backups are sealed to.
    pub fn public_key(&self) -> EncryptionPublicKey {
        EncryptionPublicKey(x25519_dalek::PublicKey::from(&self.0).to_bytes())
    }

    /// The secret as text, to keep offline.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{SECRET_PREFIX}{}",
            BASE32_NOPAD.encode(&self.0.to_bytes()).to_lowercase()
        ))
    }

    /// The secret from its text (surrounding space ignored).
    pub fn from_text(text: &str) -> Result<Self, BackupSealError> {
        let body = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(BackupSealError::NotASecret)?;
        let bytes = Zeroizing::new(
            BASE32_NOPAD
                .decode(body.to_ascii_uppercase().as_bytes())
                .map_err(|_| BackupSealError::NotASecret)?,
        );
        let bytes: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| BackupSealError::NotASecret)?;
        Ok(Self(x25519_dalek::StaticSecret::from(bytes)))
    }
}

fn from_sealing(e: crate::sealing::SealingError) -> BackupSealError {
    use crate::sealing::SealingError as E;
    match e {
        E::BadKey => BackupSealError::BadKey,
        E::Decrypt => BackupSealError::WrongKeyOrAltered,
        E::Random(why) => BackupSealError::Random(why),
    }
}

/// Seals `plaintext` to the backup key `recipient`.
pub fn seal(plaintext: &[u8], recipient: &EncryptionPublicKey) -> Result<Vec<u8>, BackupSealError> {
    let sealed =
        crate::sealing::seal(plaintext, &recipient.0, INFO, MAGIC).map_err(from_sealing)?;
    Ok([MAGIC, &sealed.ephemeral, &sealed.nonce, &sealed.ciphertext].concat())
}

/// Opens a sealed backup with the backup secret.
pub fn open(sealed: &[u8], secret: &BackupSecret) -> Result<Zeroizing<Vec<u8>>, BackupSealError> {
    let body = sealed
        .strip_prefix(MAGIC)
        .filter(|b| b.len() > 44)
        .ok_or(BackupSealError::NotABackup)?;
    let (ephemeral, rest) = body.split_at(32);
    let (nonce, ciphertext) = rest.split_at(12);
    let parts = crate::sealing::Sealed {
        ephemeral: ephemeral
            .try_into()
            .map_err(|_| BackupSealError::NotABackup)?,
        nonce: nonce.try_into().map_err(|_| BackupSealError::NotABackup)?,
        ciphertext: ciphertext.to_vec(),
    };
    let shared = secret
        .0
        .diffie_hellman(&x25519_dalek::PublicKey::from(parts.ephemeral));
    if !shared.was_contributory() {
        return Err(BackupSealError::BadKey);
    }
    crate::sealing::open(
        &parts,
        shared.as_bytes(),
        &secret.public_key().0,
        INFO,
        MAGIC,
    )
    .map_err(from_sealing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_opens_with_its_secret_only_and_not_once_altered() {
        let secret = BackupSecret::generate().unwrap();
        let sealed = seal(b"case files", &secret.public_key()).unwrap();
        assert_eq!(open(&sealed, &secret).unwrap().as_slice(), b"case files");
        let again = BackupSecret::from_text(&secret.to_text()).unwrap();
        assert_eq!(open(&sealed, &again).unwrap().as_slice(), b"case files");
        let other = BackupSecret::generate().unwrap();
        assert_eq!(
            open(&sealed, &other),
            Err(BackupSealError::WrongKeyOrAltered)
        );
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert_eq!(
            open(&altered, &secret),
            Err(BackupSealError::WrongKeyOrAltered)
        );
        assert_eq!(open(b"hello", &secret), Err(BackupSealError::NotABackup));
        assert!(BackupSecret::from_text("passerelle-backup-secret-xyz").is_err());
        assert!(!sealed.windows(10).any(|w| w == b"case files"));
    }
}
