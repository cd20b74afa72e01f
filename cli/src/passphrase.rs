//! The passphrase of key files protected by one (`passerelle init --passphrase`): for the
//! service, from its credential (`LoadCredential=passphrase:…` in the unit puts it in
//! `$CREDENTIALS_DIRECTORY/passphrase`); for a person, asked on the terminal. Never read
//! from the command line or the environment itself, never printed.

use std::path::Path;

use anyhow::Context;
use passerelle_node::keys::{self, Passphrase};

/// The name of the service's credential holding the passphrase.
pub const CREDENTIAL: &str = "passphrase";

/// The passphrase from the service's credential, when one is given.
fn from_credential() -> anyhow::Result<Option<Passphrase>> {
    let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") else {
        return Ok(None);
    };
    let path = Path::new(&dir).join(CREDENTIAL);
    if !path.exists() {
        return Ok(None);
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(&path)
            .with_context(|| format!("passphrase: reading the credential {}", path.display()))?,
    );
    Ok(Some(Passphrase::new(&text)))
}

/// The passphrase of `data_dir`'s key files, when they are protected (`None` when not).
pub fn unlock(data_dir: &Path) -> anyhow::Result<Option<Passphrase>> {
    if !keys::protected(data_dir) {
        return Ok(None);
    }
    if let Some(passphrase) = from_credential()? {
        return Ok(Some(passphrase));
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        anyhow::bail!(
            "passphrase: the keys of {} are protected by a passphrase and standard input is not a terminal; for the service, give it as the credential `{CREDENTIAL}` (LoadCredential=passphrase:/etc/passerelle/passphrase in the unit)",
            data_dir.display()
        );
    }
    let text = zeroize::Zeroizing::new(rpassword::prompt_password("Passphrase of the keys: ")?);
    Ok(Some(Passphrase::new(&text)))
}

/// A new passphrase for `init --passphrase`: the service's credential when given, else
/// asked twice on the terminal; at least 12 characters.
pub fn new_one() -> anyhow::Result<Passphrase> {
    let passphrase = match from_credential()? {
        Some(passphrase) => passphrase,
        None => {
            if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                anyhow::bail!(
                    "passphrase: standard input is not a terminal; give the passphrase as the credential file $CREDENTIALS_DIRECTORY/{CREDENTIAL}"
                );
            }
            let first = zeroize::Zeroizing::new(rpassword::prompt_password(
                "Passphrase for the keys (at least 12 characters): ",
            )?);
            let again = zeroize::Zeroizing::new(rpassword::prompt_password("Again: ")?);
            if *first != *again {
                anyhow::bail!("passphrase: the two do not match; nothing was created");
            }
            Passphrase::new(&first)
        }
    };
    if passphrase.len() < 12 {
        anyhow::bail!("passphrase: at least 12 characters; nothing was created");
    }
    Ok(passphrase)
}
