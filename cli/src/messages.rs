//! The command's own messages in French and English, in one place: the words around an
//! error, and the errors every command can meet (no node, a node this user may not reach,
//! a node of another release, a busy node). Errors the node answers with (bad input, not
//! found) come from the node, with the field, the value and what is accepted.
//!
//! The language: `--lang`, else `[node] lang` of `config.toml`, else the locale
//! (`LC_ALL`, `LC_MESSAGES`, `LANG`: `fr_CM.UTF-8` is French, `en_GB.UTF-8` English; `C`
//! says nothing), else French.

use passerelle_node::api::ErrorKind;
use passerelle_node::control::ClientError;
use passerelle_node::reference::Lang;

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
