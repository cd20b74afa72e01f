//! The command's help in French: every command's and argument's text from one catalogue
//! ([`FRENCH`]), laid over the definition clap derives from the English doc comments, with
//! the headings and clap's own words (usage, help, version) in French too.

use clap::{Arg, Command};
use passerelle_node::reference::Lang;

/// The command's definition, its help in `lang`.
pub fn command(lang: Lang) -> Command {
    let mut command = <crate::Cli as clap::CommandFactory>::command();
    // Built, so that clap's own --help, --version and `help` are there to translate.
    command.build();
    if lang == Lang::Fr {
        french(&mut command, "passerelle");
    }
    command
}

/// Every command's key (`passerelle referral send`) and argument's key
/// (`passerelle referral send --service`, `passerelle completions <shell>`), with its English
/// text: what the catalogue must say in French.
#[cfg(test)]
fn english_texts() -> Vec<(String, String)> {
    let mut command = <crate::Cli as clap::CommandFactory>::command();
    command.build();
    let mut texts = Vec::new();
    collect(&command, "passerelle", &mut texts);
    texts
}

#[cfg(test)]
fn collect(command: &Command, path: &str, texts: &mut Vec<(String, String)>) {
    let about = command
        .get_long_about()
        .or(command.get_about())
        .map(ToString::to_string)
        .unwrap_or_default();
    texts.push((path.to_owned(), about));
    for arg in command.get_arguments() {
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(ToString::to_string)
            .unwrap_or_default();
        texts.push((arg_key(path, arg), help));
    }
    for sub in command.get_subcommands() {
        if sub.get_name() != "help" {
            collect(sub, &format!("{path} {}", sub.get_name()), texts);
        }
    }
}

fn arg_key(path: &str, arg: &Arg) -> String {
    let name = match arg.get_long() {
        Some(long) => format!("--{long}"),
        None => format!("<{}>", arg.get_id()),
    };
    if arg.is_global_set() || matches!(arg.get_id().as_str(), "help" | "version") {
        format!("passerelle {name}")
    } else {
        format!("{path} {name}")
    }
}

/// The French catalogue: key, tab, text (`\n` for a line break).
const FRENCH: &str = include_str!("../i18n/help.fr.tsv");

/// The catalogue, read: key → text.
fn catalogue() -> &'static std::collections::HashMap<&'static str, String> {
    static READ: std::sync::OnceLock<std::collections::HashMap<&'static str, String>> =
        std::sync::OnceLock::new();
    READ.get_or_init(|| {
        FRENCH
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .filter_map(|line| line.split_once('\t'))
            .map(|(key, text)| (key, text.replace("\\n", "\n")))
            .collect()
    })
}

/// How a help page is laid out, in French (clap's default, its words translated).
const TEMPLATE: &str =
    "{before-help}{about-with-newline}\nUtilisation : {usage}\n\n{all-args}{after-help}";

/// `text` as a summary (its first paragraph) and, when it has more, a long text (all of
/// it).
fn summary_and_long(text: &str) -> (String, Option<String>) {
    match text.split_once("\n\n") {
        Some((summary, _)) => (summary.to_owned(), Some(text.to_owned())),
        None => (text.to_owned(), None),
    }
}

/// A long text, or none (the summary is all there is).
fn resettable(long: Option<String>) -> clap::builder::Resettable<clap::builder::StyledStr> {
    match long {
        Some(long) => clap::builder::Resettable::Value(long.into()),
        None => clap::builder::Resettable::Reset,
    }
}

fn french(command: &mut Command, path: &str) {
    let texts = catalogue();
    // `passerelle help referral send` shows the help of `passerelle referral send`.
    let own = path.replacen("passerelle help", "passerelle", 1);
    let about = if path == "passerelle help" {
        Some("Afficher ce message ou l'aide des sous-commandes données".to_owned())
    } else {
        texts.get(own.as_str()).cloned()
    };
    let mut changed = std::mem::take(command)
        .help_template(TEMPLATE)
        .subcommand_help_heading("Commandes")
        .subcommand_value_name("COMMANDE");
    if let Some(about) = about {
        let (summary, long) = summary_and_long(&about);
        changed = changed.about(summary).long_about(resettable(long));
    }
    changed = changed.mut_args(|arg| {
        let key = arg_key(&own, &arg);
        let text = match arg.get_id().as_str() {
            "help" if arg.get_long_help().is_none() => Some("Afficher l'aide".to_owned()),
            "help" => {
                let long = texts.get("passerelle --help").cloned().unwrap_or_default();
                return arg
                    .help("Afficher l'aide (plus de détails avec « --help »)")
                    .long_help(long);
            }
            "subcommand" if path == "passerelle help" => {
                Some("La commande dont afficher l'aide".to_owned())
            }
            _ => texts.get(key.as_str()).cloned(),
        };
        match text {
            Some(text) => {
                let (summary, long) = summary_and_long(&text);
                arg.help(summary).long_help(resettable(long))
            }
            None => arg,
        }
    });
    *command = changed;
    for sub in command.get_subcommands_mut() {
        let path = format!("{path} {}", sub.get_name());
        french(sub, &path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command and argument has its French text, and the catalogue holds nothing
    /// else: a command or flag added without its French fails here.
    #[test]
    fn every_command_and_argument_is_said_in_french() {
        let english = english_texts();
        let keys: std::collections::HashSet<&str> =
            english.iter().map(|(key, _)| key.as_str()).collect();
        let missing: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|key| !catalogue().contains_key(key))
            .collect();
        assert!(
            missing.is_empty(),
            "no French in cli/i18n/help.fr.tsv for: {missing:?}"
        );
        let stale: Vec<&&str> = catalogue()
            .keys()
            .filter(|key| !keys.contains(**key))
            .collect();
        assert!(
            stale.is_empty(),
            "cli/i18n/help.fr.tsv says what no command has: {stale:?}"
        );
        assert!(catalogue().values().all(|text| !text.trim().is_empty()));
    }

    /// The French help is what is shown: commands, arguments, clap's own flags, headings.
    #[test]
    fn the_help_is_shown_in_french() {
        let mut command = command(Lang::Fr);
        let page = command.render_long_help().to_string();
        assert!(page.contains("Utilisation : passerelle"), "{page}");
        assert!(page.contains("Commandes:"), "{page}");
        assert!(
            page.contains("Envoyer une référence") || page.contains("Références"),
            "{page}"
        );
        assert!(page.contains("Afficher l'aide"), "{page}");
        assert!(!page.contains("Print help"), "{page}");
        let send = command
            .find_subcommand_mut("referral")
            .and_then(|c| c.find_subcommand_mut("send"))
            .expect("referral send");
        let page = send.render_long_help().to_string();
        assert!(page.contains("Le nom complet de la personne"), "{page}");
        assert!(page.contains("Langue des messages"), "{page}");
        let mut english = super::command(Lang::En);
        let page = english.render_long_help().to_string();
        assert!(page.contains("Usage: passerelle"), "{page}");
        assert!(page.contains("Print help"), "{page}");
    }

    #[test]
    #[ignore = "prints the catalogue's keys and English texts"]
    fn print_the_english_texts() {
        let mut seen = std::collections::HashSet::new();
        for (key, text) in english_texts() {
            if seen.insert(key.clone()) {
                println!("{key}\t{}", text.replace('\n', "\\n"));
            }
        }
    }
}
