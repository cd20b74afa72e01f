//! An organisation's key files: `<data dir>/keys/`, mode 0700, each key in a file of mode
//! 0600, written once and synced, refused when others can read them.

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

/// An identity's key files.
pub trait KeyFiles: Sized {
    /// Writes the two key files into `<data_dir>/keys/` with mode 0600 (the folder 0700).
    /// Refuses if either file exists.
    fn save_new(&self, data_dir: &Path) -> Result<(), IdentityError>;
    /// Reads the identity from `<data_dir>/keys/`, refusing key files others can read.
    fn load(data_dir: &Path) -> Result<Self, IdentityError>;
    /// True when `<data_dir>/keys/` holds a signing key.
    fn exists_in(data_dir: &Path) -> bool;
}

impl KeyFiles for Identity {
    fn save_new(&self, data_dir: &Path) -> Result<(), IdentityError> {
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
        write_secret_file(&signing_path, &self.signing().to_secret_bytes())?;
        write_secret_file(&encryption_path, &self.encryption_secret_bytes())?;
        // The files' names are durable only once their folders are synced.
        for folder in [&keys, &data_dir.to_path_buf()] {
            crate::durable::sync_dir(folder).map_err(|source| IdentityError::Io {
                path: folder.clone(),
                source,
            })?;
        }
        Ok(())
    }

    fn load(data_dir: &Path) -> Result<Self, IdentityError> {
        let keys = data_dir.join(KEYS_DIR);
        let signing = read_secret_file(&keys.join(SIGNING_KEY_FILE))?;
        let encryption = read_secret_file(&keys.join(ENCRYPTION_KEY_FILE))?;
        Ok(Identity::from_secret_bytes(&signing, &encryption))
    }

    fn exists_in(data_dir: &Path) -> bool {
        data_dir.join(KEYS_DIR).join(SIGNING_KEY_FILE).exists()
    }
}

fn write_secret_file(path: &Path, bytes: &[u8; 32]) -> Result<(), IdentityError> {
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

fn read_secret_file(path: &Path) -> Result<Zeroizing<[u8; 32]>, IdentityError> {
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
    let mut buffer = Zeroizing::new(Vec::with_capacity(33));
    Read::by_ref(&mut file)
        .take(33)
        .read_to_end(&mut buffer)
        .map_err(io)?;
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
