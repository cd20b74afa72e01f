//! Which of the import's columns each column of a mapping is, from its header as people
//! write it ("Prestation proposée", "Nombre de places", "Capacité (par mois)", "Zone
//! d'intervention", "Langue(s) parlée(s)"), and how each was read — or why it was not.
//!
//! In this order, a column taken by an earlier step is not taken again:
//! 1. what the user said (`--column "Prestation proposée=service"`, a mapping file);
//! 2. a header that is one of the import's documented names ([`COLUMNS`]);
//! 3. a header's words (the first rule of [`RULES`] whose words it holds);
//! 4. a header naming a place or a contact without saying which ("Zone d'intervention",
//!    "Contact"): its values decide (region names → region, else town; `@` → e-mail,
//!    digits → phone).
//!
//! Every column of the file gets a [`ColumnReading`] that says which of these read it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::import::{COLUMNS, header_key};
use crate::directory::fold;
use crate::reference::{Lang, areas};

/// How a column of the file was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The user said which column it is.
    Given,
    /// Its header is one of the import's documented names.
    Header,
    /// A word of its header.
    Words,
    /// Its values.
    Values,
    /// Another column of the file was read as the same column first: not read.
    Taken,
    /// The user said to ignore it.
    Ignored,
    /// Not read: nothing in it names a column of the import.
    Unknown,
}

/// How one column of the file was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnReading {
    /// Its header, as the file writes it.
    pub header: String,
    /// Its position in the file (1 for the first).
    pub position: usize,
    /// The import's column it is read as (`None`: not read).
    pub column: Option<String>,
    /// Which step read it, or why it was not read.
    pub rule: Rule,
    /// The same in words, in the user's language.
    pub how: String,
}

/// A header's words that make it one of the import's columns: it holds one of `any`, and
/// one of `with` when `with` is not empty, and none of `without`.
#[derive(Debug)]
pub struct WordRule {
    /// The import's column.
    pub column: &'static str,
    /// One of these words names it.
    pub any: &'static [&'static str],
    /// One of these must be there too (empty: nothing more).
    pub with: &'static [&'static str],
    /// None of these may be there.
    pub without: &'static [&'static str],
}

const fn rule(
    column: &'static str,
    any: &'static [&'static str],
    with: &'static [&'static str],
    without: &'static [&'static str],
) -> WordRule {
    WordRule {
        column,
        any,
        with,
        without,
    }
}

/// The words of headers, in the order they are tried (words compared folded — no case,
/// no accents — and singular: "Langue(s) parlée(s)" holds "langue" and "parlee").
pub const RULES: &[WordRule] = &[
    rule("email", &["email", "courriel", "mail"], &[], &[]),
    rule(
        "phone",
        &[
            "telephone",
            "tel",
            "phone",
            "portable",
            "mobile",
            "gsm",
            "whatsapp",
        ],
        &[],
        &[],
    ),
    rule("latitude", &["latitude", "lat"], &[], &[]),
    rule("longitude", &["longitude", "lng", "lon"], &[], &[]),
    rule(
        "acronym",
        &[
            "sigle",
            "acronyme",
            "acronym",
            "abreviation",
            "abbreviation",
        ],
        &[],
        &[],
    ),
    rule("places", &["place", "seat"], &[], &[]),
    rule(
        "places",
        &["capacite", "capacity"],
        &[
            "nombre", "nb", "par", "per", "mois", "month", "semaine", "week", "an", "annee",
            "year", "jour", "day", "max", "maximum", "total", "personne", "people", "number",
        ],
        &[],
    ),
    rule(
        "capacity",
        &[
            "capacite",
            "capacity",
            "disponibilite",
            "availability",
            "disponible",
        ],
        &[],
        &[],
    ),
    rule(
        "type",
        &[
            "type",
            "statut",
            "status",
            "nature",
            "forme",
            "categorie",
            "category",
        ],
        &[
            "organisation",
            "organization",
            "structure",
            "acteur",
            "actor",
            "juridique",
            "legal",
            "partenaire",
            "partner",
            "entite",
            "institution",
        ],
        &[],
    ),
    rule(
        "type",
        &["statut", "juridique", "legal", "type"],
        &[],
        &[
            "service",
            "prestation",
            "activite",
            "offre",
            "intervention",
            "capacite",
        ],
    ),
    rule(
        "languages",
        &["langue", "language", "lingua", "parle", "parlee", "spoken"],
        &[],
        &[],
    ),
    rule(
        "cost",
        &[
            "cout",
            "cost",
            "tarif",
            "frais",
            "prix",
            "fee",
            "gratuit",
            "gratuite",
            "payant",
            "tarification",
        ],
        &[],
        &[],
    ),
    rule(
        "eligibility",
        &[
            "eligibilite",
            "eligibility",
            "cible",
            "beneficiaire",
            "critere",
            "condition",
            "admission",
            "target",
        ],
        &[],
        &["nombre", "nb", "number"],
    ),
    rule(
        "description",
        &["description", "descriptif", "detail"],
        &[],
        &[],
    ),
    rule(
        "category",
        &[
            "categorie",
            "category",
            "sous",
            "subsector",
            "thematique",
            "theme",
        ],
        &[],
        &[],
    ),
    rule(
        "category",
        &["type", "nature"],
        &[
            "service",
            "prestation",
            "activite",
            "offre",
            "appui",
            "aide",
        ],
        &[],
    ),
    rule(
        "dimension",
        &["dimension", "domaine", "pilier", "secteur", "sector", "axe"],
        &[],
        &[],
    ),
    rule(
        "department",
        &["departement", "department", "adm2"],
        &[],
        &[],
    ),
    rule("region", &["region", "adm1", "province"], &[], &[]),
    rule(
        "town",
        &[
            "ville",
            "town",
            "city",
            "localite",
            "commune",
            "arrondissement",
            "village",
        ],
        &[],
        &[],
    ),
    rule(
        "address",
        &["adresse", "address", "quartier", "rue", "situation", "bp"],
        &[],
        &[],
    ),
    rule(
        "service",
        &[
            "service",
            "prestation",
            "activite",
            "offre",
            "offert",
            "programme",
            "projet",
            "appui",
            "aide",
            "intervention",
        ],
        &[],
        PLACE_WORDS,
    ),
    rule(
        "organisation",
        &[
            "organisation",
            "organization",
            "org",
            "nom",
            "name",
            "structure",
            "acteur",
            "actor",
            "partenaire",
            "partner",
            "institution",
            "entite",
            "denomination",
            "raison",
            "ong",
            "association",
        ],
        &[],
        &["focal", "responsable", "personne", "point", "contact"],
    ),
];

/// Words of a header that name a place without saying which kind: its values decide.
const PLACE_WORDS: &[&str] = &[
    "zone",
    "localisation",
    "lieu",
    "implantation",
    "site",
    "emplacement",
    "location",
    "area",
];

/// Words of a header that name a contact without saying which kind: its values decide.
const CONTACT_WORDS: &[&str] = &["contact", "coordonnee", "joindre"];

/// A header's words: folded, split at anything not a letter or digit, one-letter words
/// (the "s" of "Langue(s)", the "d" of "d'organisation") left out.
fn words(header: &str) -> Vec<String> {
    fold(header)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() > 1)
        .map(str::to_owned)
        .collect()
}

/// `word` is `keyword`, or its plural ("places", "langues", "prestations").
fn is(word: &str, keyword: &str) -> bool {
    word == keyword
        || (word.len() == keyword.len() + 1
            && word.starts_with(keyword)
            && (word.ends_with('s') || word.ends_with('x')))
}

fn holds<'a>(words: &[String], keywords: &[&'a str]) -> Option<&'a str> {
    keywords
        .iter()
        .find(|k| words.iter().any(|w| is(w, k)))
        .copied()
}

/// The first rule a header's words match, and the word that matched.
pub fn by_words(header: &str) -> Option<(&'static str, &'static str)> {
    let words = words(header);
    RULES.iter().find_map(|rule| {
        let word = holds(&words, rule.any)?;
        if !rule.with.is_empty() && holds(&words, rule.with).is_none() {
            return None;
        }
        if holds(&words, rule.without).is_some() {
            return None;
        }
        Some((rule.column, word))
    })
}

/// The import's column a user names (`service`, or any header the import documents for
/// it: `prestation`, `langues`…), or `None` for "ignore this column"; else why not.
pub fn column_named(text: &str, lang: Lang) -> Result<Option<&'static str>, String> {
    let key = header_key(text);
    if matches!(key.as_str(), "ignore" | "ignorer" | "aucune" | "none" | "") {
        return Ok(None);
    }
    COLUMNS
        .iter()
        .find(|(column, names)| *column == key || names.contains(&key.as_str()))
        .map(|(column, _)| Some(*column))
        .ok_or_else(|| {
            lang.pick(
                format!(
                    "{text:?} is not a column of the import; columns: {}, or ignore",
                    column_list()
                ),
                format!(
                    "« {text} » n'est pas une colonne de l'import ; colonnes : {}, ou ignorer",
                    column_list()
                ),
            )
        })
}

fn column_list() -> String {
    COLUMNS
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the user says of the file's columns: `HEADER=COLUMN` pairs (from `--column`, or the
/// lines of a mapping file), the header as the file writes it (case and accents aside).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Given {
    /// Header (folded) → the column, or `None` to ignore it; with the text as given.
    pairs: Vec<(String, Option<&'static str>, String)>,
}

impl Given {
    /// Reads `HEADER=COLUMN` pairs; the error names the pair and what is accepted.
    pub fn parse<'a>(pairs: impl IntoIterator<Item = &'a str>, lang: Lang) -> Result<Self, String> {
        let mut given = Self::default();
        for pair in pairs {
            let Some((header, column)) = pair.rsplit_once('=') else {
                return Err(lang.pick(
                    format!(
                        "{pair:?} is not HEADER=COLUMN (e.g. \"Prestation proposée=service\")"
                    ),
                    format!(
                        "« {pair} » n'est pas EN-TÊTE=COLONNE (par ex. « Prestation proposée=service »)"
                    ),
                ));
            };
            let column = column_named(column.trim(), lang)?;
            given
                .pairs
                .push((fold(header.trim()), column, header.trim().to_owned()));
        }
        Ok(given)
    }

    /// Reads a mapping file: one `HEADER = COLUMN` a line; blank lines and lines starting
    /// with `#` are skipped. The error names the line.
    pub fn parse_file(text: &str, lang: Lang) -> Result<Self, String> {
        let mut given = Self::default();
        for (number, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let one = Self::parse([line], lang).map_err(|why| {
                lang.pick(
                    format!("line {}: {why}", number + 1),
                    format!("ligne {} : {why}", number + 1),
                )
            })?;
            given.pairs.extend(one.pairs);
        }
        Ok(given)
    }

    /// These pairs, then `other`'s.
    pub fn and(mut self, other: Self) -> Self {
        self.pairs.extend(other.pairs);
        self
    }

    /// True when nothing was said.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// Share of the non-empty values that `test` accepts, as (accepted, non-empty).
fn share(values: &[&str], test: impl Fn(&str) -> bool) -> (usize, usize) {
    let filled: Vec<&&str> = values.iter().filter(|v| !v.trim().is_empty()).collect();
    (filled.iter().filter(|v| test(v)).count(), filled.len())
}

fn is_region(text: &str) -> bool {
    let wanted = fold(text.trim());
    areas::region(text).is_some()
        || areas::REGIONS
            .iter()
            .any(|r| fold(r.name_fr) == wanted || fold(r.name_en) == wanted)
}

fn is_phone(text: &str) -> bool {
    let digits = text.chars().filter(char::is_ascii_digit).count();
    digits >= 6
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || " +-./()".contains(c))
}

/// How each column of the file is read. `rows` are the file's rows (their values decide
/// the columns whose header names a place or a contact without saying which). The error
/// names a header the user gave that the file does not have.
pub fn recognise(
    headers: &[String],
    rows: &[Vec<String>],
    given: &Given,
    lang: Lang,
) -> Result<Vec<ColumnReading>, String> {
    let mut readings: Vec<Option<ColumnReading>> = vec![None; headers.len()];
    let mut taken: BTreeMap<&'static str, usize> = BTreeMap::new();
    let folded: Vec<String> = headers.iter().map(|h| fold(h.trim())).collect();
    // 1. What the user said.
    for (header, column, text) in &given.pairs {
        let Some(index) = folded.iter().position(|h| h == header) else {
            return Err(lang.pick(
                format!(
                    "the file has no column {text:?}; its columns: {}",
                    quoted(headers)
                ),
                format!(
                    "le fichier n'a pas de colonne « {text} » ; ses colonnes : {}",
                    quoted(headers)
                ),
            ));
        };
        let reading = match column {
            Some(column) => {
                if let Some(&other) = taken.get(column) {
                    return Err(lang.pick(
                        format!(
                            "{column} is given twice: for {:?} and for {:?}",
                            headers[other], headers[index]
                        ),
                        format!(
                            "{column} est donnée deux fois : pour « {} » et pour « {} »",
                            headers[other], headers[index]
                        ),
                    ));
                }
                taken.insert(column, index);
                (Some(*column), Rule::Given)
            }
            None => (None, Rule::Ignored),
        };
        readings[index] = Some(ColumnReading {
            header: headers[index].clone(),
            position: index + 1,
            column: reading.0.map(str::to_owned),
            rule: reading.1,
            how: match reading.1 {
                Rule::Given => lang.pick("as you said", "comme vous l'avez dit").to_owned(),
                _ => lang
                    .pick("ignored, as you said", "ignorée, comme vous l'avez dit")
                    .to_owned(),
            },
        });
    }
    let values = |index: usize| -> Vec<&str> {
        rows.iter()
            .filter_map(|r| r.get(index).map(String::as_str))
            .collect()
    };
    // 2, 3 and 4, each over every column still unread.
    for step in [Rule::Header, Rule::Words, Rule::Values] {
        for (index, header) in headers.iter().enumerate() {
            if readings[index].is_some() || header.trim().is_empty() {
                continue;
            }
            let found: Option<(&'static str, String)> = match step {
                Rule::Header => {
                    let key = header_key(header);
                    COLUMNS
                        .iter()
                        .find(|(_, names)| names.contains(&key.as_str()))
                        .map(|(column, _)| {
                            (*column, lang.pick("its header", "son en-tête").to_owned())
                        })
                }
                Rule::Words => by_words(header).map(|(column, word)| {
                    (
                        column,
                        lang.pick(
                            format!("by the word \"{word}\""),
                            format!("par le mot « {word} »"),
                        ),
                    )
                }),
                _ => by_values(header, &values(index), lang),
            };
            let Some((column, how)) = found else {
                continue;
            };
            readings[index] = Some(match taken.get(column) {
                Some(&first) => ColumnReading {
                    header: header.clone(),
                    position: index + 1,
                    column: None,
                    rule: Rule::Taken,
                    how: lang.pick(
                        format!(
                            "not read: {how} it would be {column}, already read from {:?} (say which with --column)",
                            headers[first]
                        ),
                        format!(
                            "non lue : {how} ce serait {column}, déjà lue dans « {} » (précisez avec --column)",
                            headers[first]
                        ),
                    ),
                },
                None => {
                    taken.insert(column, index);
                    ColumnReading {
                        header: header.clone(),
                        position: index + 1,
                        column: Some(column.to_owned()),
                        rule: step,
                        how,
                    }
                }
            });
        }
    }
    Ok(readings
        .into_iter()
        .enumerate()
        .filter_map(|(index, reading)| {
            reading.or_else(|| {
                let header = &headers[index];
                // A column with neither header nor values is no column.
                if header.trim().is_empty() && values(index).iter().all(|v| v.trim().is_empty())
                {
                    return None;
                }
                Some(ColumnReading {
                    header: header.clone(),
                    position: index + 1,
                    column: None,
                    rule: Rule::Unknown,
                    how: if header.trim().is_empty() {
                        lang.pick(
                            "not read: it has no header (name it, or say which with --column)",
                            "non lue : elle n'a pas d'en-tête (nommez-la, ou précisez avec --column)",
                        )
                        .to_owned()
                    } else {
                        lang.pick(
                            "not read: no word of its header names a column of the import (say which with --column, if it is one)",
                            "non lue : aucun mot de son en-tête ne nomme une colonne de l'import (précisez avec --column, si c'en est une)",
                        )
                        .to_owned()
                    },
                })
            })
        })
        .collect())
}

fn quoted(headers: &[String]) -> String {
    headers
        .iter()
        .filter(|h| !h.trim().is_empty())
        .map(|h| format!("{h:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A header naming a place or a contact without saying which: its values decide.
fn by_values(header: &str, values: &[&str], lang: Lang) -> Option<(&'static str, String)> {
    let words = words(header);
    if holds(&words, PLACE_WORDS).is_some() {
        let (regions, filled) = share(values, is_region);
        return Some(if filled > 0 && regions * 2 >= filled {
            (
                "region",
                lang.pick(
                    format!("its values: {regions} of {filled} are regions"),
                    format!("ses valeurs : {regions} sur {filled} sont des régions"),
                ),
            )
        } else {
            (
                "town",
                lang.pick(
                    format!("its values: {regions} of {filled} are regions, so towns"),
                    format!(
                        "ses valeurs : {regions} sur {filled} sont des régions, donc des villes"
                    ),
                ),
            )
        });
    }
    if holds(&words, CONTACT_WORDS).is_some() {
        let (emails, filled) = share(values, |v| v.contains('@'));
        let (phones, _) = share(values, is_phone);
        if filled > 0 && emails * 2 > filled {
            return Some((
                "email",
                lang.pick(
                    format!("its values: {emails} of {filled} are e-mail addresses"),
                    format!("ses valeurs : {emails} sur {filled} sont des adresses e-mail"),
                ),
            ));
        }
        if filled > 0 && phones * 2 > filled {
            return Some((
                "phone",
                lang.pick(
                    format!("its values: {phones} of {filled} are phone numbers"),
                    format!("ses valeurs : {phones} sur {filled} sont des numéros de téléphone"),
                ),
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(headers: &[&str], rows: &[&[&str]], given: &[&str]) -> Vec<ColumnReading> {
        let headers: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r.iter().map(|v| (*v).to_owned()).collect())
            .collect();
        let given = Given::parse(given.iter().copied(), Lang::En).unwrap();
        recognise(&headers, &rows, &given, Lang::En).unwrap()
    }

    fn columns(readings: &[ColumnReading]) -> Vec<Option<&str>> {
        readings.iter().map(|r| r.column.as_deref()).collect()
    }

    #[test]
    fn headers_written_as_phrases_are_read_by_their_words() {
        for (header, column) in [
            ("Prestation proposée", "service"),
            ("Services offerts", "service"),
            ("Nom du service", "service"),
            ("Nom de la structure", "organisation"),
            ("Type d'organisation", "type"),
            ("Statut juridique", "type"),
            ("Nombre de places", "places"),
            ("Capacité (par mois)", "places"),
            ("Capacité d'accueil", "capacity"),
            ("Langue(s) parlée(s)", "languages"),
            ("Coût (FCFA)", "cost"),
            ("Public cible", "eligibility"),
            ("Domaine d'intervention", "dimension"),
            ("Type de service", "category"),
            ("Sous-secteur", "category"),
            ("Adresse e-mail", "email"),
            ("Téléphone / WhatsApp", "phone"),
            ("Département", "department"),
            ("Ville / Localité", "town"),
        ] {
            assert_eq!(by_words(header).map(|(c, _)| c), Some(column), "{header:?}");
        }
        for header in ["Observations", "Nom du point focal", "Date de mise à jour"] {
            assert_eq!(by_words(header), None, "{header:?}");
        }
    }

    #[test]
    fn a_place_or_a_contact_without_a_kind_is_read_by_its_values() {
        let readings = read(
            &["Zone d'intervention", "Lieu", "Contact", "Contact 2"],
            &[
                &["Littoral", "Douala", "info@ard.cm", "+237 699 00 00 01"],
                &["Extrême-Nord", "Maroua", "", "233 42 42 42"],
                &["Centre", "Yaoundé", "x@y.cm", ""],
            ],
            &[],
        );
        assert_eq!(
            columns(&readings),
            [Some("region"), Some("town"), Some("email"), Some("phone")]
        );
        assert!(readings.iter().all(|r| r.rule == Rule::Values));
        assert!(readings[0].how.contains("3 of 3"), "{}", readings[0].how);
    }

    #[test]
    fn the_user_says_which_column_and_the_first_header_keeps_its_column() {
        let readings = read(
            &[
                "Nom",
                "Activité",
                "Prestation proposée",
                "Remarques",
                "Région",
            ],
            &[],
            &["activite=ignore", "Remarques = description"],
        );
        assert_eq!(
            columns(&readings),
            [
                Some("organisation"),
                None,
                Some("service"),
                Some("description"),
                Some("region")
            ]
        );
        assert_eq!(readings[1].rule, Rule::Ignored);
        assert_eq!(readings[3].rule, Rule::Given);
        // Two headers read as one column: the exact header first, the other reported.
        let readings = read(&["Services offerts", "Service"], &[], &[]);
        assert_eq!(columns(&readings), [None, Some("service")]);
        assert_eq!(readings[0].rule, Rule::Taken);
        assert!(
            readings[0].how.contains("\"Service\""),
            "{}",
            readings[0].how
        );
    }

    #[test]
    fn what_the_user_says_wrong_is_refused_with_what_is_accepted() {
        let headers = vec!["Nom".to_owned()];
        let given = Given::parse(["Absent=service"], Lang::En).unwrap();
        let error = recognise(&headers, &[], &given, Lang::En).unwrap_err();
        assert!(error.contains("\"Nom\""), "{error}");
        let error = Given::parse(["Nom=servise"], Lang::Fr).unwrap_err();
        assert!(
            error.contains("servise") && error.contains("colonnes : organisation"),
            "{error}"
        );
        assert!(Given::parse(["Nom service"], Lang::En).is_err());
        let error =
            Given::parse_file("# columns\nNom = organisation\nPrix\n", Lang::En).unwrap_err();
        assert!(error.starts_with("line 3:"), "{error}");
        let file =
            Given::parse_file("\u{feff}# columns\n\nNom = organisation\n", Lang::En).unwrap();
        assert!(!file.is_empty());
    }
}
