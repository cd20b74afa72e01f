//! Languages as people write them in a spreadsheet — a code (`fr`, `ful`) or a name in
//! French or English ("Français", "anglais", "Arabe", "Fulfulde", "Pidgin") — read as ISO
//! 639 codes, from ISO 639-3's table of living languages with their English and French
//! names (Debian's iso-codes, shipped as `node/core/data/iso639-3.tsv`).
//!
//! A name matches a language's English name, its inverted name ("Fulfulde, Adamawa") or
//! its French name, case and accents folded. A name that is only the first part of
//! several ("Fulfulde", "Pidgin") is read as the one spoken in Cameroon when one of them
//! is ([`CAMEROON`]), else reported with the candidates.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::text::fold;

const TABLE: &str = include_str!("../../data/iso639-3.tsv");

/// Where a first-part name ("Fulfulde", "Pidgin", "Basaa") could be several languages, the
/// one of Cameroon's: ISO 639-3 codes of languages spoken in Cameroon that share a first
/// name with others elsewhere.
pub const CAMEROON: [&str; 6] = ["fub", "wes", "bas", "ewo", "dua", "bum"];

/// Names of Cameroon's languages as they are spelt in French in Cameroon that ISO 639-3's
/// table does not give (it has "bamun", "adamawa fulfulde", "ghomálá'"), with their
/// ISO 639-3 code.
pub const SPELT_IN_CAMEROON: [(&str, &str); 8] = [
    ("foulfoulde", "fub"),
    ("fulfulde", "fub"),
    ("bamoun", "bax"),
    ("bassa", "bas"),
    ("boulou", "bum"),
    ("arabe choa", "shu"),
    ("pidgin english", "wes"),
    ("pidgin-english", "wes"),
];

/// A name as looked up: folded (case, accents) and without apostrophes ("Ghomálá'").
fn key(text: &str) -> String {
    fold(text.trim()).replace(['\'', '’'], "")
}

struct Language {
    code: &'static str,
}

/// The table, indexed once: by code (639-1 and 639-3), by whole folded name (English,
/// inverted, French), and by each first part of a name that a comma or space ends
/// ("fulfulde" of "fulfulde, adamawa"). An import reads a language cell per row: each
/// lookup is a few hash probes, not a pass over 7,000 languages.
struct Table {
    languages: Vec<Language>,
    codes: HashMap<&'static str, usize>,
    names: HashMap<String, Vec<usize>>,
    first_parts: HashMap<String, Vec<usize>>,
    alpha3: Vec<&'static str>,
}

fn table() -> &'static Table {
    static TABLE_READ: OnceLock<Table> = OnceLock::new();
    TABLE_READ.get_or_init(|| {
        let mut table = Table {
            languages: Vec::new(),
            codes: HashMap::new(),
            names: HashMap::new(),
            first_parts: HashMap::new(),
            alpha3: Vec::new(),
        };
        for line in TABLE
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let mut fields = line.split('\t');
            let (Some(code), Some(alpha3)) = (fields.next(), fields.next()) else {
                continue;
            };
            let index = table.languages.len();
            table.languages.push(Language { code });
            table.alpha3.push(alpha3);
            table.codes.insert(code, index);
            table.codes.insert(alpha3, index);
            for name in fields.take(3).map(key).filter(|n| !n.is_empty()) {
                for (at, c) in name.char_indices() {
                    if c == ',' || c == ' ' {
                        let entry = table.first_parts.entry(name[..at].to_owned()).or_default();
                        if !entry.contains(&index) {
                            entry.push(index);
                        }
                    }
                }
                let entry = table.names.entry(name).or_default();
                if !entry.contains(&index) {
                    entry.push(index);
                }
            }
        }
        table
    })
}

/// Why a text is not a language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotALanguage {
    /// Nothing was written.
    Empty,
    /// Neither a code nor a name in the table.
    Unknown,
    /// The name of several languages, none spoken in Cameroon: some of their codes.
    Several(Vec<&'static str>),
}

impl NotALanguage {
    /// What is wrong, in `lang`.
    pub fn message(&self, lang: super::Lang) -> String {
        match self {
            Self::Empty => lang.pick("empty", "vide").to_owned(),
            Self::Unknown => lang
                .pick(
                    "not an ISO 639 language code or a language's name in French or English \
                     (e.g. fr, français, French, ful, Fulfulde, Pidgin)",
                    "ni un code de langue ISO 639, ni le nom d'une langue en français ou en \
                     anglais (par ex. fr, français, French, ful, fulfulde, pidgin)",
                )
                .to_owned(),
            Self::Several(codes) => lang.pick(
                format!(
                    "the name of several languages ({}…); give its ISO 639 code",
                    codes.join(", ")
                ),
                format!(
                    "le nom de plusieurs langues ({}…) ; donnez son code ISO 639",
                    codes.join(", ")
                ),
            ),
        }
    }
}

impl std::fmt::Display for NotALanguage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message(super::Lang::En))
    }
}

/// The ISO 639 code (639-1 where there is one, else 639-3) of a language given by code or
/// name; else why not.
pub fn code_of(text: &str) -> Result<String, NotALanguage> {
    let wanted = key(text);
    if wanted.is_empty() {
        return Err(NotALanguage::Empty);
    }
    let table = table();
    if let Some(&index) = table.codes.get(wanted.as_str()) {
        return Ok(table.languages[index].code.to_owned());
    }
    if let Some((_, alpha3)) = SPELT_IN_CAMEROON.iter().find(|(name, _)| *name == wanted)
        && let Some(&index) = table.codes.get(alpha3)
    {
        return Ok(table.languages[index].code.to_owned());
    }
    // A whole name, else the first part of several ("Fulfulde", "pidgin").
    let candidates: &[usize] = table
        .names
        .get(&wanted)
        .or_else(|| table.first_parts.get(&wanted))
        .map_or(&[], Vec::as_slice);
    match candidates {
        [] => Err(NotALanguage::Unknown),
        [one] => Ok(table.languages[*one].code.to_owned()),
        several => match several
            .iter()
            .find(|&&i| CAMEROON.contains(&table.alpha3[i]))
        {
            Some(&ours) => Ok(table.languages[ours].code.to_owned()),
            None => Err(NotALanguage::Several(
                several
                    .iter()
                    .take(6)
                    .map(|&i| table.languages[i].code)
                    .collect(),
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
            ("Ghomala", "bbj"),
            ("Ghomálá'", "bbj"),
            ("Bamoun", "bax"),
            ("Foulfouldé", "fub"),
            ("Bassa", "bas"),
            ("Arabe choa", "shu"),
            ("haoussa", "ha"),
        ] {
            assert_eq!(code_of(written).as_deref(), Ok(code), "{written}");
        }
        assert!(code_of("Klingonais").is_err());
        assert!(code_of("").is_err());
        assert!(
            table().languages.len() > 7_000,
            "the whole table, not a hand list"
        );
    }
}
