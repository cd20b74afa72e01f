//! Languages as people write them in a spreadsheet — a code (`fr`, `ful`) or a name in
//! French or English ("Français", "anglais", "Arabe", "Fulfulde", "Pidgin") — read as ISO
//! 639 codes, from ISO 639-3's table of living languages with their English and French
//! names (Debian's iso-codes, shipped as `node/core/data/iso639-3.tsv`).
//!
//! A name matches a language's English name, its inverted name ("Fulfulde, Adamawa") or
//! its French name, case and accents folded. A name that is only the first part of
//! several ("Fulfulde", "Pidgin") is read as the one spoken in Cameroon when one of them
//! is ([`CAMEROON`]), else reported with the candidates.

use std::sync::OnceLock;

use crate::text::fold;

const TABLE: &str = include_str!("../../data/iso639-3.tsv");

/// Where a first-part name ("Fulfulde", "Pidgin", "Basaa") could be several languages, the
/// one of Cameroon's: ISO 639-3 codes of languages spoken in Cameroon that share a first
/// name with others elsewhere.
pub const CAMEROON: [&str; 6] = ["fub", "wes", "bas", "ewo", "dua", "bum"];

struct Language {
    code: &'static str,
    alpha3: &'static str,
    names: [String; 3],
}

fn table() -> &'static [Language] {
    static TABLE_READ: OnceLock<Vec<Language>> = OnceLock::new();
    TABLE_READ.get_or_init(|| {
        TABLE
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|line| {
                let mut fields = line.split('\t');
                let code = fields.next()?;
                let alpha3 = fields.next()?;
                let english = fields.next().unwrap_or_default();
                let inverted = fields.next().unwrap_or_default();
                let french = fields.next().unwrap_or_default();
                Some(Language {
                    code,
                    alpha3,
                    names: [fold(english), fold(inverted), fold(french)],
                })
            })
            .collect()
    })
}

/// The ISO 639 code (639-1 where there is one, else 639-3) of a language given by code or
/// name; else why not.
pub fn code_of(text: &str) -> Result<String, String> {
    let wanted = fold(text.trim());
    if wanted.is_empty() {
        return Err("empty".into());
    }
    let languages = table();
    if let Some(l) = languages
        .iter()
        .find(|l| l.code == wanted || l.alpha3 == wanted)
    {
        return Ok(l.code.to_owned());
    }
    let exact: Vec<&Language> = languages
        .iter()
        .filter(|l| l.names.iter().any(|n| !n.is_empty() && *n == wanted))
        .collect();
    let candidates = if exact.is_empty() {
        // The first part of an inverted or French name: "Fulfulde" of "Fulfulde,
        // Adamawa", "pidgin" of "pidgin du Cameroun".
        languages
            .iter()
            .filter(|l| {
                l.names.iter().any(|n| {
                    n.strip_prefix(wanted.as_str())
                        .is_some_and(|rest| rest.starts_with(',') || rest.starts_with(' '))
                })
            })
            .collect()
    } else {
        exact
    };
    match candidates.as_slice() {
        [] => Err(
            "not an ISO 639 language code or a language's name in French or English \
             (e.g. fr, français, French, ful, Fulfulde, Pidgin)"
                .into(),
        ),
        [one] => Ok(one.code.to_owned()),
        several => match several.iter().find(|l| CAMEROON.contains(&l.alpha3)) {
            Some(ours) => Ok(ours.code.to_owned()),
            None => Err(format!(
                "the name of several languages ({}…); give its ISO 639 code",
                several
                    .iter()
                    .take(6)
                    .map(|l| l.code)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_read_by_code_or_by_name_as_people_write_them() {
        for (written, code) in [
            ("fr", "fr"),
            ("FRA", "fr"),
            ("Français", "fr"),
            ("francais", "fr"),
            ("French", "fr"),
            ("anglais", "en"),
            ("English", "en"),
            ("Arabe", "ar"),
            ("Arabic", "ar"),
            ("allemand", "de"),
            ("peul", "ff"),
            ("Fulfulde", "fub"),
            ("Pidgin", "wes"),
            ("Cameroon Pidgin", "wes"),
            ("Ewondo", "ewo"),
            ("Duala", "dua"),
            ("ful", "ff"),
        ] {
            assert_eq!(code_of(written).as_deref(), Ok(code), "{written}");
        }
        assert!(code_of("Klingonais").is_err());
        assert!(code_of("").is_err());
        assert!(table().len() > 7_000, "the whole table, not a hand list");
    }
}
