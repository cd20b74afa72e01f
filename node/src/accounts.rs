//! The accounts of the people who use this node's web page: a name, a role and a password
//! hashed with Argon2id, kept in the node's own store (never replicated, never sent).
//!
//! Rules:
//! - A name is 1 to 64 letters, digits, `.`, `_` or `-` (case kept, compared folded); a
//!   password at least [`MIN_PASSWORD_CHARS`] characters.
//! - The hash is Argon2id in its PHC string (salt and parameters with it); a password is
//!   never stored, logged or answered. [`Password`] prints as `***`.
//! - Checking a password costs the same whether the account exists or not (a dummy hash
//!   is checked for an unknown name), so the answer's time does not tell which names exist.
//! - Every write is durable when it returns (the store's flush).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError};

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest name accepted.
pub const MAX_NAME_CHARS: usize = 64;

/// What an account may do on the web page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the directory, the board and the reports; never a case file.
    Viewer,
    /// A caseworker: also refers, reads case files, answers and moves referrals.
    Officer,
    /// Also edits this organisation's offices and services, and decides on membership.
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Self::Viewer),
            "officer" => Ok(Self::Officer),
            "admin" => Ok(Self::Admin),
            other => Err(format!(
                "role {other:?} is not one of: admin, officer, viewer"
            )),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Viewer => "viewer",
            Self::Officer => "officer",
            Self::Admin => "admin",
        })
    }
}

/// A password on its way to be hashed or checked: never printed.
#[derive(
    Clone, PartialEq, Eq, Serialize, Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop,
)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// An account, as it is shown (never with its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Its name, as given.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// When it was made (Unix seconds).
    pub created: i64,
    /// When its password was last set.
    pub password_set: i64,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    name: String,
    role: Role,
    created: i64,
    password_set: i64,
    /// Argon2id, PHC string.
    hash: String,
}

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The name is not one the rules accept.
    #[error("name {0:?}: 1 to 64 letters, digits, '.', '_' or '-'")]
    BadName(String),
    /// The password is too short.
    #[error("password: at least {MIN_PASSWORD_CHARS} characters")]
    ShortPassword,
    /// An account of that name exists.
    #[error("an account named {0:?} exists already")]
    Exists(String),
    /// No account of that name.
    #[error("no account named {0:?}")]
    NotFound(String),
    /// Removing it would leave no admin.
    #[error("{0:?} is the last admin: add another admin first")]
    LastAdmin(String),
    /// Hashing failed.
    #[error("hashing the password: {0}")]
    Hash(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored account cannot be read.
    #[error("the stored account {0:?} cannot be read (the store is damaged)")]
    Damaged(String),
}

impl AccountError {
    /// What is wrong, in French.
    pub fn fr(&self) -> String {
        match self {
            Self::BadName(name) => {
                format!("nom {name:?} : 1 à 64 lettres, chiffres, '.', '_' ou '-'")
            }
            Self::ShortPassword => {
                format!("mot de passe : au moins {MIN_PASSWORD_CHARS} caractères")
            }
            Self::Exists(name) => format!("un compte nommé {name:?} existe déjà"),
            Self::NotFound(name) => format!("aucun compte nommé {name:?}"),
            Self::LastAdmin(name) => format!(
                "{name:?} est le dernier administrateur : ajoutez d'abord un autre administrateur"
            ),
            Self::Hash(e) => format!("hachage du mot de passe : {e}"),
            Self::Store(e) => format!("le stockage : {e}"),
            Self::Damaged(name) => {
                format!("le compte enregistré {name:?} est illisible (le stockage est endommagé)")
            }
        }
    }
}

impl From<sled::Error> for AccountError {
    fn from(e: sled::Error) -> Self {
        Self::Store(e.into())
    }
}

/// The accounts of this node (cheap to clone).
#[derive(Clone)]
pub struct Accounts {
    tree: sled::Tree,
    syncer: std::sync::Arc<crate::store::Syncer>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts").finish_non_exhaustive()
    }
}

fn key(name: &str) -> Vec<u8> {
    name.to_lowercase().into_bytes()
}

fn check_name(name: &str) -> Result<(), AccountError> {
    let count = name.chars().count();
    if count == 0
        || count > MAX_NAME_CHARS
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(AccountError::BadName(name.to_owned()));
    }
    Ok(())
}

fn hash(password: &Password) -> Result<String, AccountError> {
    if password.0.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountError::ShortPassword);
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.0.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// A hash of no account's password, checked for an unknown name.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash(&Password::new("no account has this password")).unwrap_or_default())
}

fn matches(hash: &str, password: &Password) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.0.as_bytes(), &parsed)
            .is_ok()
    })
}

impl Accounts {
    /// The accounts kept in `store`.
    pub fn open(store: &Store) -> Result<Self, AccountError> {
        Ok(Self {
            tree: store.database().open_tree("web-accounts")?,
            syncer: store.syncer(),
        })
    }

    fn read(&self, name: &str) -> Result<Option<Stored>, AccountError> {
        self.tree
            .get(key(name))?
            .map(|bytes| {
                serde_json::from_slice(&bytes).map_err(|_| AccountError::Damaged(name.into()))
            })
            .transpose()
    }

    fn write(&self, stored: &Stored) -> Result<(), AccountError> {
        let bytes =
            serde_json::to_vec(stored).map_err(|_| AccountError::Damaged(stored.name.clone()))?;
        self.tree.insert(key(&stored.name), bytes)?;
        self.syncer.flush()?;
        Ok(())
    }

    /// Makes an account; durable when it returns.
    pub fn add(
        &self,
        name: &str,
        role: Role,
        password: &Password,
    ) -> Result<Account, AccountError> {
        check_name(name)?;
        if self.read(name)?.is_some() {
            return Err(AccountError::Exists(name.to_owned()));
        }
        let now = crate::unix_now();
        let stored = Stored {
            name: name.to_owned(),
            role,
            created: now,
            password_set: now,
            hash: hash(password)?,
        };
        self.write(&stored)?;
        Ok(account(&stored))
    }

    /// Every account, by name.
    pub fn list(&self) -> Result<Vec<Account>, AccountError> {
        self.tree
            .iter()
            .map(|entry| {
                let (k, bytes) = entry?;
                serde_json::from_slice::<Stored>(&bytes)
                    .map(|s| account(&s))
                    .map_err(|_| AccountError::Damaged(String::from_utf8_lossy(&k).into()))
            })
            .collect()
    }

    /// The account named `name`.
    pub fn get(&self, name: &str) -> Result<Account, AccountError> {
        self.read(name)?
            .map(|s| account(&s))
            .ok_or_else(|| AccountError::NotFound(name.to_owned()))
    }

    /// Removes an account (never the last admin while others remain).
    pub fn remove(&self, name: &str) -> Result<(), AccountError> {
        let stored = self
            .read(name)?
            .ok_or_else(|| AccountError::NotFound(name.to_owned()))?;
        let accounts = self.list()?;
        if stored.role == Role::Admin
            && accounts.len() > 1
            && accounts.iter().filter(|a| a.role == Role::Admin).count() == 1
        {
            return Err(AccountError::LastAdmin(stored.name));
        }
        self.tree.remove(key(name))?;
        self.syncer.flush()?;
        Ok(())
    }

    /// Sets a new password; durable when it returns.
    pub fn set_password(&self, name: &str, password: &Password) -> Result<(), AccountError> {
        let mut stored = self
            .read(name)?
            .ok_or_else(|| AccountError::NotFound(name.to_owned()))?;
        stored.hash = hash(password)?;
        stored.password_set = crate::unix_now();
        self.write(&stored)
    }

    /// The account, if `password` is its password. Takes as long for an unknown name.
    pub fn check(&self, name: &str, password: &Password) -> Result<Option<Account>, AccountError> {
        match self.read(name)? {
            Some(stored) if matches(&stored.hash, password) => Ok(Some(account(&stored))),
            Some(_) => Ok(None),
            None => {
                let _ = matches(dummy_hash(), password);
                Ok(None)
            }
        }
    }
}

fn account(stored: &Stored) -> Account {
    Account {
        name: stored.name.clone(),
        role: stored.role,
        created: stored.created,
        password_set: stored.password_set,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_kept_hashed_checked_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("store")).unwrap();
        let accounts = Accounts::open(&store).unwrap();
        let password = Password::new("correct horse battery");
        let amina = accounts.add("Amina", Role::Officer, &password).unwrap();
        assert_eq!(amina.role, Role::Officer);
        assert!(matches!(
            accounts.add("amina", Role::Viewer, &password),
            Err(AccountError::Exists(_))
        ));
        assert!(matches!(
            accounts.add("a b", Role::Viewer, &password),
            Err(AccountError::BadName(_))
        ));
        assert!(matches!(
            accounts.add("jean", Role::Viewer, &Password::new("short")),
            Err(AccountError::ShortPassword)
        ));
        assert_eq!(
            accounts.check("AMINA", &password).unwrap().map(|a| a.name),
            Some("Amina".to_owned())
        );
        assert_eq!(
            accounts
                .check("amina", &Password::new("wrong horse battery"))
                .unwrap(),
            None
        );
        assert_eq!(accounts.check("nobody", &password).unwrap(), None);
        // Never the password, never the hash in what is stored as text.
        for entry in store.database().open_tree("web-accounts").unwrap().iter() {
            let (_, bytes) = entry.unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains("correct horse"), "{text}");
            assert!(text.contains("$argon2id$"), "{text}");
        }
        assert_eq!(format!("{password:?}"), "***");
        let new = Password::new("another long secret");
        accounts.set_password("amina", &new).unwrap();
        assert_eq!(accounts.check("amina", &password).unwrap(), None);
        assert!(accounts.check("amina", &new).unwrap().is_some());
        accounts
            .add("chef", Role::Admin, &Password::new("the admin's secret"))
            .unwrap();
        assert!(matches!(
            accounts.remove("chef"),
            Err(AccountError::LastAdmin(_))
        ));
        accounts.remove("amina").unwrap();
        assert!(matches!(
            accounts.get("amina"),
            Err(AccountError::NotFound(_))
        ));
        // The last account of all may go.
        accounts.remove("chef").unwrap();
        assert!(accounts.list().unwrap().is_empty());
    }
}
