//! The command's own messages in French and English, in one place: the words around an
//! error, and the errors every command can meet (no node, a node this user may not reach,
//! a node of another release, a busy node). Errors the node answers with (bad input, not
//! found) come from the node in both languages, with the field, the value and what is
//! accepted.
//!
//! The language: `--lang`, else `[node] lang` of `config.toml`, else the locale
//! (`LC_ALL`, `LC_MESSAGES`, `LANG`: `fr_CM.UTF-8` is French, `en_GB.UTF-8` English; `C`
//! says nothing), else French.

use passerelle_node::api::ErrorKind;
use passerelle_node::control::ClientError;
use passerelle_node::reference::Lang;

/// The language of this run: French unless set to English.
static ENGLISH: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets the language of this run's messages: as the arguments look before clap reads
/// them, then as resolved once they are read.
pub fn set_lang(lang: Lang) {
    ENGLISH.store(lang == Lang::En, std::sync::atomic::Ordering::Relaxed);
}

/// The language of this run's messages.
pub fn lang() -> Lang {
    if ENGLISH.load(std::sync::atomic::Ordering::Relaxed) {
        Lang::En
    } else {
        Lang::Fr
    }
}

/// The English or the French, as this run speaks.
pub fn said(en: String, fr: String) -> String {
    lang().pick(en, fr)
}

/// A word or label in the English or the French, as this run speaks.
pub fn t(en: &'static str, fr: &'static str) -> &'static str {
    lang().pick(en, fr)
}

/// The language the locale asks for, if it names French or English.
pub fn locale_lang() -> Option<Lang> {
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.is_empty())
        .and_then(|value| match value.get(..2) {
            Some("fr") => Some(Lang::Fr),
            Some("en") => Some(Lang::En),
            _ => None,
        })
}

/// "error: " and "caused by: ", as each language writes them.
pub fn error_words(lang: Lang) -> (&'static str, &'static str) {
    lang.pick(("error: ", "caused by: "), ("erreur : ", "cause : "))
}

/// An error every command can meet, in `lang`; `None` for the others (said as they are).
pub fn client_error(error: &ClientError, lang: Lang) -> Option<String> {
    if lang == Lang::En {
        return None;
    }
    Some(match error {
        ClientError::NotRunning { data_dir, socket } => format!(
            "aucun nœud ne tourne pour le dossier {} (pas de réponse sur {}) ; démarrez-le avec `passerelle start`",
            data_dir.display(),
            socket.display()
        ),
        ClientError::NotAllowed { path } => format!(
            "{} : cet utilisateur ne peut pas joindre ce nœud : lancez la commande sous l'utilisateur du nœud, ou rejoignez son groupe (celui du paquet Debian : sudo usermod -aG passerelle $USER, puis reconnectez-vous)",
            path.display()
        ),
        ClientError::Version { node } => format!(
            "le nœud en marche parle {node}, cette commande l'API de contrôle {} : redémarrez le nœud avec cette version (ou utilisez la commande de la version du nœud)",
            passerelle_node::api::API_VERSION
        ),
        ClientError::Api(api) if api.kind == ErrorKind::Busy => {
            "le nœud est trop occupé pour répondre maintenant : rien n'a été fait ; réessayez dans un instant".to_owned()
        }
        // Input refused, not found: the node says them in French.
        ClientError::Api(api) => api.fr.clone()?,
        _ => return None,
    })
}

/// Says clap's refusal of the arguments in `lang` and exits (2), as clap does; the help
/// and version it was asked for are printed as they are.
pub fn clap_error(error: clap::Error, lang: Lang) -> ! {
    use clap::error::ErrorKind as Kind;
    if lang == Lang::En
        || matches!(
            error.kind(),
            Kind::DisplayHelp
                | Kind::DisplayVersion
                | Kind::DisplayHelpOnMissingArgumentOrSubcommand
        )
    {
        error.exit()
    }
    match clap_in_french(&error) {
        Some(said) => {
            eprintln!("erreur : {said}");
            if let Some(usage) = error.get(clap::error::ContextKind::Usage) {
                let usage = usage.to_string();
                let usage = usage.trim().replacen("Usage:", "Utilisation :", 1);
                eprintln!("\n{usage}");
            }
            eprintln!("\nPour en savoir plus, essayez « --help ».");
            std::process::exit(2)
        }
        None => error.exit(),
    }
}

/// clap's refusal in French, for the kinds people meet; `None` for the others.
fn clap_in_french(error: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind as Context, ErrorKind as Kind};
    let get = |kind: Context| error.get(kind).map(ToString::to_string);
    let arg = get(Context::InvalidArg).unwrap_or_default();
    let value = get(Context::InvalidValue).unwrap_or_default();
    let suggestion = |kind: Context| {
        get(kind)
            .map(|s| format!(" ; vouliez-vous dire « {s} » ?"))
            .unwrap_or_default()
    };
    Some(match error.kind() {
        Kind::InvalidValue => match get(Context::ValidValue) {
            Some(valid) => {
                format!("valeur « {value} » refusée pour « {arg} » ; valeurs acceptées : {valid}")
            }
            None => format!("« {arg} » demande une valeur"),
        },
        Kind::ValueValidation => {
            let why = std::error::Error::source(error)
                .map(ToString::to_string)
                .unwrap_or_default();
            // The model's parsers say what they accept after "is not one of: ".
            let why = match why.split_once(" is not one of: ") {
                Some((_, accepted)) => format!("valeurs acceptées : {accepted}"),
                None => why,
            };
            format!("valeur « {value} » refusée pour « {arg} » : {why}")
        }
        Kind::UnknownArgument => format!(
            "argument « {arg} » inattendu{}",
            suggestion(Context::SuggestedArg)
        ),
        Kind::InvalidSubcommand => format!(
            "sous-commande « {} » inconnue{}",
            get(Context::InvalidSubcommand).unwrap_or_default(),
            suggestion(Context::SuggestedSubcommand)
        ),
        Kind::MissingRequiredArgument => format!("argument requis manquant : {arg}"),
        Kind::ArgumentConflict => format!(
            "« {arg} » ne peut pas être donné avec « {} »",
            get(Context::PriorArg).unwrap_or_default()
        ),
        Kind::TooManyValues | Kind::TooFewValues | Kind::WrongNumberOfValues => {
            format!("nombre de valeurs refusé pour « {arg} »")
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_main_errors_are_said_in_both_languages() {
        let not_running = ClientError::NotRunning {
            data_dir: "/var/lib/passerelle".into(),
            socket: "/var/lib/passerelle/control.sock".into(),
        };
        assert!(
            client_error(&not_running, Lang::Fr)
                .expect("French")
                .starts_with("aucun nœud ne tourne pour le dossier /var/lib/passerelle")
        );
        assert_eq!(client_error(&not_running, Lang::En), None);
        assert!(
            not_running
                .to_string()
                .starts_with("no node is running for data folder /var/lib/passerelle")
        );
        assert_eq!(error_words(Lang::Fr), ("erreur : ", "cause : "));
    }
}
