//! An organisation's key files: `<data dir>/keys/`, mode 0700, each key in a file of mode
//! 0600, written once and synced, refused when others can read them.
//!
//! A key may be protected by a passphrase (`passerelle init --passphrase`): the file then
//! holds `PASSERELLE-SEALED-KEY-1\n`, an Argon2id salt and cost (64 MiB, 3 passes), a nonce
//! and the key sealed with ChaCha20-Poly1305 under the key Argon2id derives from the
//! passphrase. A stolen disk, or a copy of the data folder, then opens nothing without it.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use zeroize::Zeroizing;

use crate::identity::{Identity, IdentityError};

/// File name of the organisation's ed25519 signing key inside `keys/`.
pub const SIGNING_KEY_FILE: &str = "organisation.ed25519";
/// File name of the organisation's X25519 encryption key inside `keys/`.
pub const ENCRYPTION_KEY_FILE: &str = "encryption.x25519";
/// Folder of the data directory that holds the key files.
pub const KEYS_DIR: &str = "keys";

/// What a passphrase-protected key file starts with.
pub const SEALED_KEY_MAGIC: &[u8] = b"PASSERELLE-SEALED-KEY-1\n";
const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
const ARGON2_PASSES: u32 = 3;

/// A passphrase protecting the key files. Never printed; zeroized on drop.
#[derive(Clone)]
pub struct Passphrase(std::sync::Arc<Zeroizing<String>>);

impl Passphrase {
    /// Wraps `text` (a trailing line break, from a file, is not part of it).
    pub fn new(text: &str) -> Self {
        Self(std::sync::Arc::new(Zeroizing::new(
            text.trim_end_matches(['\r', '\n']).to_owned(),
        )))
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Its length in characters.
    pub fn len(&self) -> usize {
        self.0.chars().count()
    }

    /// True when it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// True when the key files in `data_dir` are protected by a passphrase.
pub fn protected(data_dir: &Path) -> bool {
    let path = data_dir.join(KEYS_DIR).join(SIGNING_KEY_FILE);
    let mut start = [0u8; 24];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut start))
        .is_ok_and(|()| start == SEALED_KEY_MAGIC)
}

fn derive(
    passphrase: &Passphrase,
    salt: &[u8],
    memory: u32,
    passes: u32,
) -> Result<Zeroizing<[u8; 32]>, IdentityError> {
    let params = argon2::Params::new(memory, passes, 1, Some(32))
        .map_err(|e| IdentityError::Random(format!("argon2 parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.bytes(), salt, key.as_mut())
        .map_err(|e| IdentityError::Random(format!("argon2: {e}")))?;
    Ok(key)
}

fn seal_key(bytes: &[u8; 32], passphrase: &Passphrase) -> Result<Vec<u8>, IdentityError> {
    use chacha20poly1305::aead::{Aead, KeyInit};
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    for buffer in [salt.as_mut_slice(), nonce.as_mut_slice()] {
        getrandom::fill(buffer).map_err(|e| IdentityError::Random(e.to_string()))?;
    }
    let key = derive(passphrase, &salt, ARGON2_MEMORY_KIB, ARGON2_PASSES)?;
    let sealed =
        chacha20poly1305::ChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(key.as_ref()))
            .encrypt(
                chacha20poly1305::Nonce::from_slice(&nonce),
                bytes.as_slice(),
            )
            .map_err(|_| IdentityError::Random("sealing a key".into()))?;
    Ok([
        SEALED_KEY_MAGIC,
        &salt,
        &ARGON2_MEMORY_KIB.to_le_bytes(),
        &ARGON2_PASSES.to_le_bytes(),
        &nonce,
        &sealed,
    ]
    .concat())
}

fn open_key(
    path: &Path,
    file: &[u8],
    passphrase: Option<&Passphrase>,
) -> Result<Zeroizing<[u8; 32]>, IdentityError> {
    use chacha20poly1305::aead::{Aead, KeyInit};
    let damaged = || IdentityError::BadKeyFile(path.to_owned());
    let body = file.strip_prefix(SEALED_KEY_MAGIC).ok_or_else(damaged)?;
    let passphrase = passphrase.ok_or_else(|| IdentityError::Locked(path.to_owned()))?;
    if body.len() != 16 + 4 + 4 + 12 + 48 {
        return Err(damaged());
    }
    let (salt, rest) = body.split_at(16);
    let (memory, rest) = rest.split_at(4);
    let (passes, rest) = rest.split_at(4);
    let (nonce, sealed) = rest.split_at(12);
    let memory = u32::from_le_bytes(memory.try_into().map_err(|_| damaged())?);
    let passes = u32::from_le_bytes(passes.try_into().map_err(|_| damaged())?);
    // Costs a hostile file could set to exhaust the machine are refused.
    if !(8..=1024 * 1024).contains(&memory) || !(1..=16).contains(&passes) {
        return Err(damaged());
    }
    let key = derive(passphrase, salt, memory, passes)?;
    let opened = Zeroizing::new(
        chacha20poly1305::ChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(key.as_ref()))
            .decrypt(chacha20poly1305::Nonce::from_slice(nonce), sealed)
            .map_err(|_| IdentityError::WrongPassphrase(path.to_owned()))?,
    );
    let bytes: [u8; 32] = opened.as_slice().try_into().map_err(|_| damaged())?;
    Ok(Zeroizing::new(bytes))
}

/// A secret given in a request (the backup secret): never written in a log or a debug
/// print.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SecretText(String);

impl SecretText {
    /// Wraps `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl PartialEq for SecretText {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(<redacted>)")
    }
}

impl Drop for SecretText {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// An identity's key files.
pub trait KeyFiles: Sized {
    /// Writes the two key files into `<data_dir>/keys/` with mode 0600 (the folder 0700).
    /// Refuses if either file exists.
    fn save_new(&self, data_dir: &Path) -> Result<(), IdentityError> {
        self.save_new_with(data_dir, None)
    }
    /// [`Self::save_new`], each key sealed under `passphrase` when one is given.
    fn save_new_with(
        &self,
        data_dir: &Path,
        passphrase: Option<&Passphrase>,
    ) -> Result<(), IdentityError>;
    /// Reads the identity from `<data_dir>/keys/`, refusing key files others can read.
    fn load(data_dir: &Path) -> Result<Self, IdentityError> {
        Self::load_with(data_dir, None)
    }
    /// [`Self::load`], opening keys protected by `passphrase`.
    fn load_with(data_dir: &Path, passphrase: Option<&Passphrase>) -> Result<Self, IdentityError>;
    /// True when `<data_dir>/keys/` holds a signing key.
    fn exists_in(data_dir: &Path) -> bool;
}

impl KeyFiles for Identity {
    fn save_new_with(
        &self,
        data_dir: &Path,
        passphrase: Option<&Passphrase>,
    ) -> Result<(), IdentityError> {
        let keys = data_dir.join(KEYS_DIR);
        let signing_path = keys.join(SIGNING_KEY_FILE);
        let encryption_path = keys.join(ENCRYPTION_KEY_FILE);
        for path in [&signing_path, &encryption_path] {
            if path.exists() {
                return Err(IdentityError::AlreadyExists(path.clone()));
            }
        }
        fs::create_dir_all(&keys).map_err(|source| IdentityError::Io {
            path: keys.clone(),
            source,
        })?;
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o700)).map_err(|source| {
            IdentityError::Io {
                path: keys.clone(),
                source,
            }
        })?;
        for (path, bytes) in [
            (&signing_path, self.signing().to_secret_bytes()),
            (&encryption_path, self.encryption_secret_bytes()),
        ] {
            match passphrase {
                Some(passphrase) => write_secret_file(path, &seal_key(&bytes, passphrase)?)?,
                None => write_secret_file(path, bytes.as_slice())?,
            }
        }
        // The files' names are durable only once their folders are synced.
        for folder in [&keys, &data_dir.to_path_buf()] {
            crate::durable::sync_dir(folder).map_err(|source| IdentityError::Io {
                path: folder.clone(),
                source,
            })?;
        }
        Ok(())
    }

    fn load_with(data_dir: &Path, passphrase: Option<&Passphrase>) -> Result<Self, IdentityError> {
        let keys = data_dir.join(KEYS_DIR);
        let signing = read_secret_file(&keys.join(SIGNING_KEY_FILE), passphrase)?;
        let encryption = read_secret_file(&keys.join(ENCRYPTION_KEY_FILE), passphrase)?;
        Ok(Identity::from_secret_bytes(&signing, &encryption))
    }

    fn exists_in(data_dir: &Path) -> bool {
        data_dir.join(KEYS_DIR).join(SIGNING_KEY_FILE).exists()
    }
}

fn write_secret_file(path: &Path, bytes: &[u8]) -> Result<(), IdentityError> {
    let io = |source| IdentityError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                IdentityError::AlreadyExists(path.to_owned())
            } else {
                io(e)
            }
        })?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(())
}

fn read_secret_file(
    path: &Path,
    passphrase: Option<&Passphrase>,
) -> Result<Zeroizing<[u8; 32]>, IdentityError> {
    let io = |source| IdentityError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(IdentityError::Missing(path.to_owned()));
        }
        Err(e) => return Err(io(e)),
    };
    let mode = file.metadata().map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    let mut buffer = Zeroizing::new(Vec::with_capacity(256));
    Read::by_ref(&mut file)
        .take(256)
        .read_to_end(&mut buffer)
        .map_err(io)?;
    if buffer.starts_with(SEALED_KEY_MAGIC) {
        return open_key(path, &buffer, passphrase);
    }
    let bytes: [u8; 32] = buffer
        .as_slice()
        .try_into()
        .map_err(|_| IdentityError::BadKeyFile(path.to_owned()))?;
    Ok(Zeroizing::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sealed_by_a_passphrase_open_with_it_only() {
        let folder = tempfile::tempdir().unwrap();
        let identity = Identity::generate().unwrap();
        let passphrase = Passphrase::new("la clé du bureau de Douala\n");
        identity
            .save_new_with(folder.path(), Some(&passphrase))
            .unwrap();
        assert!(protected(folder.path()));
        let path = folder.path().join(KEYS_DIR).join(SIGNING_KEY_FILE);
        let bytes = fs::read(&path).unwrap();
        let secret = identity.signing().to_secret_bytes();
        assert!(
            !bytes.windows(32).any(|w| w == secret.as_slice()),
            "the key in clear"
        );
        assert!(matches!(
            Identity::load(folder.path()),
            Err(IdentityError::Locked(_))
        ));
        let wrong = Passphrase::new("une autre phrase");
        assert!(matches!(
            Identity::load_with(folder.path(), Some(&wrong)),
            Err(IdentityError::WrongPassphrase(_))
        ));
        let opened = Identity::load_with(folder.path(), Some(&passphrase)).unwrap();
        assert_eq!(opened.org_id(), identity.org_id());
        // A file asking for a cost that would exhaust the machine is refused as damaged.
        let mut hostile = bytes.clone();
        let at = SEALED_KEY_MAGIC.len() + 16;
        hostile[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        fs::write(&path, &hostile).unwrap();
        assert!(matches!(
            Identity::load_with(folder.path(), Some(&passphrase)),
            Err(IdentityError::BadKeyFile(_))
        ));
    }

    #[test]
    fn key_files_are_private_and_never_overwritten() {
        let dir = tempfile::tempdir().expect("keys");
        let identity = Identity::generate().expect("keys");
        identity.save_new(dir.path()).expect("keys");
        for name in [SIGNING_KEY_FILE, ENCRYPTION_KEY_FILE] {
            let mode = fs::metadata(dir.path().join(KEYS_DIR).join(name))
                .expect("keys")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        let again = Identity::generate().expect("keys");
        assert!(matches!(
            again.save_new(dir.path()),
            Err(IdentityError::AlreadyExists(_))
        ));
        let loaded = Identity::load(dir.path()).expect("keys");
        assert_eq!(loaded.org_id(), identity.org_id());
        assert_eq!(
            loaded.encryption_public_key(),
            identity.encryption_public_key()
        );
    }

    #[test]
    fn readable_key_file_is_refused() {
        let dir = tempfile::tempdir().expect("keys");
        Identity::generate()
            .expect("keys")
            .save_new(dir.path())
            .expect("keys");
        let path = dir.path().join(KEYS_DIR).join(SIGNING_KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("keys");
        assert!(matches!(
            Identity::load(dir.path()),
            Err(IdentityError::TooOpen { .. })
        ));
    }
}
