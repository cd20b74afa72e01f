//! Whose rows of an imported file are this organisation's: a name is its own when it is the
//! organisation's name, its acronym, or either followed by a suffix naming a branch or a
//! country ("ARD – Bureau de Douala", "Plan International Cameroun", "ARD (antenne de
//! Maroua)", "ARD Littoral"). A name that another member also answers to is ambiguous:
//! reported, never guessed.

use serde::{Deserialize, Serialize};

use crate::directory::fold;
use crate::model::OrganisationRecord;
use crate::reference::{Lang, areas};

/// Why a name is this organisation's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Matched {
    /// Its Passerelle id, written in the file (an HSDS export's `passerelle` attributes).
    Id,
    /// Its name (case and accents aside).
    Name,
    /// Its acronym.
    Acronym,
    /// Its name or acronym, then a suffix naming a branch, an area or a country.
    Suffix {
        /// The suffix, as written.
        suffix: String,
    },
}

impl Matched {
    /// The rule in words, in `lang`.
    pub fn describe(&self, lang: Lang) -> String {
        match self {
            Self::Id => lang
                .pick("by its Passerelle id", "par son identifiant Passerelle")
                .to_owned(),
            Self::Name => lang.pick("by its name", "par son nom").to_owned(),
            Self::Acronym => lang.pick("by its acronym", "par son sigle").to_owned(),
            Self::Suffix { suffix } => lang.pick(
                format!("by its name and the suffix {suffix:?} (a branch, area or country)"),
                format!("par son nom et le suffixe « {suffix} » (un bureau, une zone ou un pays)"),
            ),
        }
    }
}

/// Whose a name of the file is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Whose {
    /// This organisation's, and by which rule.
    Own(Matched),
    /// Another organisation's (or no member's).
    Other,
    /// This organisation's by one rule, and another member's too: which, and how.
    Ambiguous {
        /// The other members it also names.
        also: Vec<String>,
    },
}

/// Words that start a suffix naming a branch ("Bureau de Douala", "Antenne régionale").
const BRANCH_WORDS: &[&str] = &[
    "bureau",
    "antenne",
    "delegation",
    "branche",
    "section",
    "office",
    "branch",
    "representation",
    "agence",
    "coordination",
    "siege",
    "unite",
    "base",
    "sous",
    "field",
    "country",
    "regional",
    "regionale",
    "national",
    "nationale",
];

/// Countries (French and English names) and regions of the world a suffix may name.
const COUNTRIES: &[&str] = &[
    "cameroun",
    "cameroon",
    "au cameroun",
    "in cameroon",
    "tchad",
    "chad",
    "nigeria",
    "gabon",
    "congo",
    "rdc",
    "drc",
    "centrafrique",
    "rca",
    "car",
    "republique centrafricaine",
    "central african republic",
    "guinee equatoriale",
    "equatorial guinea",
    "niger",
    "senegal",
    "cote d'ivoire",
    "france",
    "belgique",
    "belgium",
    "suisse",
    "switzerland",
    "allemagne",
    "germany",
    "canada",
    "etats-unis",
    "usa",
    "united states",
    "royaume-uni",
    "uk",
    "united kingdom",
    "italie",
    "italy",
    "espagne",
    "spain",
    "pays-bas",
    "netherlands",
    "afrique",
    "africa",
    "afrique centrale",
    "central africa",
    "afrique de l'ouest",
    "west africa",
    "international",
];

/// Words that may come between the name and what the suffix names ("de", "du", "au").
const LINKS: &[&str] = &["de", "du", "des", "d'", "au", "en", "of", "in", "la", "le"];

/// The suffix of `name` after `base`, when `name` is `base` then a separator or a space
/// then something; as written (trimmed of separators and brackets).
fn suffix_after<'a>(name: &'a str, folded: &'a str, base: &str) -> Option<&'a str> {
    if base.is_empty() || !folded.starts_with(base) {
        return None;
    }
    let rest = &folded[base.len()..];
    if !rest.starts_with(|c: char| c.is_whitespace() || "-–—,:/(|".contains(c)) {
        return None;
    }
    // The same suffix in the text as written: fold keeps characters one for one (but may
    // change their byte lengths: count characters), except the rare capital whose lower
    // case is two characters — then the folded suffix.
    let skip = folded[..base.len()].chars().count();
    let written: &str = if name.chars().count() == folded.chars().count() {
        name.char_indices()
            .nth(skip)
            .map_or("", |(at, _)| &name[at..])
    } else {
        rest
    };
    let written = written
        .trim_matches(|c: char| c.is_whitespace() || "-–—,:/()|".contains(c))
        .trim();
    (!written.is_empty()).then_some(written)
}

/// True when a suffix names a branch, an area of Cameroon or a country.
fn names_a_place_or_branch(suffix: &str) -> bool {
    let folded = fold(suffix).replace(['’', '\''], "' ");
    let mut words: Vec<&str> = folded
        .split(|c: char| c.is_whitespace() || "-–—,:/()|".contains(c))
        .filter(|w| !w.is_empty())
        .collect();
    if words
        .first()
        .is_some_and(|w| BRANCH_WORDS.contains(&w.trim_end_matches(['s', 'x'])))
    {
        return true;
    }
    while words.first().is_some_and(|w| LINKS.contains(w)) {
        words.remove(0);
    }
    let rest = words.join(" ");
    let rest = rest.replace("' ", "'");
    COUNTRIES.contains(&rest.as_str())
        || areas::REGIONS
            .iter()
            .any(|r| fold(r.name_fr) == rest || fold(r.name_en) == rest)
        || areas::DEPARTMENTS
            .iter()
            .any(|d| fold(d.name_fr) == rest || fold(d.name_en) == rest)
}

/// How `name` names `record`'s organisation, if it does.
pub fn matches(record: &OrganisationRecord, name: &str) -> Option<Matched> {
    let name = name.trim();
    let folded = fold(name);
    let own = fold(record.profile.name.trim());
    let acronym = record
        .profile
        .acronym
        .as_deref()
        .map(|a| fold(a.trim()))
        .filter(|a| !a.is_empty());
    if folded == own {
        return Some(Matched::Name);
    }
    if acronym.as_deref() == Some(folded.as_str()) {
        return Some(Matched::Acronym);
    }
    [Some(own), acronym]
        .into_iter()
        .flatten()
        .find_map(|base| suffix_after(name, &folded, &base))
        .filter(|suffix| names_a_place_or_branch(suffix))
        .map(|suffix| Matched::Suffix {
            suffix: suffix.to_owned(),
        })
}

/// Whose `name` is: `record`'s organisation's, by which rule, unless one of `others` (the
/// other members) answers to it as well — by its name or acronym exactly (then it is
/// theirs, when this organisation's match was only a suffix; else ambiguous), or by a
/// suffix too (ambiguous).
pub fn whose(name: &str, record: &OrganisationRecord, others: &[&OrganisationRecord]) -> Whose {
    let Some(matched) = matches(record, name) else {
        return Whose::Other;
    };
    let also: Vec<(&OrganisationRecord, Matched)> = others
        .iter()
        .filter(|o| o.org_id != record.org_id)
        .filter_map(|o| matches(o, name).map(|m| (*o, m)))
        .collect();
    if also.is_empty() {
        return Whose::Own(matched);
    }
    let exactly_theirs = also
        .iter()
        .any(|(_, m)| !matches!(m, Matched::Suffix { .. }));
    if exactly_theirs && matches!(matched, Matched::Suffix { .. }) {
        return Whose::Other;
    }
    Whose::Ambiguous {
        also: also
            .iter()
            .map(|(o, _)| format!("{} ({})", o.profile.name, o.org_id))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, name: &str, acronym: Option<&str>) -> OrganisationRecord {
        OrganisationRecord::new(
            id,
            crate::model::Profile {
                acronym: acronym.map(str::to_owned),
                ..crate::model::Profile::named(name)
            },
        )
    }

    #[test]
    fn a_name_with_a_branch_or_country_suffix_is_this_organisations() {
        let ard = record("org-ard", "Association Retour et Dignité", Some("ARD"));
        assert_eq!(
            matches(&ard, "association retour et dignite"),
            Some(Matched::Name)
        );
        assert_eq!(matches(&ard, " ard "), Some(Matched::Acronym));
        for (written, suffix) in [
            ("ARD – Bureau de Douala", "Bureau de Douala"),
            (
                "Association Retour et Dignité (antenne de Maroua)",
                "antenne de Maroua",
            ),
            ("ARD Cameroun", "Cameroun"),
            ("ARD - Littoral", "Littoral"),
            ("ARD du Wouri", "du Wouri"),
            ("ARD, délégation régionale", "délégation régionale"),
            ("ARD — Far North", "Far North"),
        ] {
            assert_eq!(
                matches(&ard, written),
                Some(Matched::Suffix {
                    suffix: suffix.to_owned()
                }),
                "{written}"
            );
        }
        // A capital whose lower case is two characters before the suffix.
        let istanbul = record("org-i", "İstanbul Yardım", None);
        assert_eq!(
            matches(&istanbul, "İstanbul Yardım – Bureau de Douala"),
            Some(Matched::Suffix {
                suffix: "bureau de douala".to_owned()
            })
        );
        for written in [
            "ARDENT",
            "ARD Jeunesse",
            "Association Retour",
            "Association Retour et Dignité des Femmes",
        ] {
            assert_eq!(matches(&ard, written), None, "{written}");
        }
    }

    #[test]
    fn a_name_another_member_answers_to_is_ambiguous_or_theirs() {
        let ard = record("org-ard", "Association Retour et Dignité", Some("ARD"));
        let other = record(
            "org-ard2",
            "Action Rurale pour le Développement",
            Some("ARD"),
        );
        let branch = record("org-ardl", "ARD Littoral", None);
        let others = [&other, &branch];
        assert!(matches!(
            whose("ARD", &ard, &others),
            Whose::Ambiguous { also } if also == ["Action Rurale pour le Développement (org-ard2)"]
        ));
        // Another member's exact name beats this organisation's suffix.
        assert_eq!(whose("ARD Littoral", &ard, &others), Whose::Other);
        assert_eq!(
            whose("Association Retour et Dignité", &ard, &others),
            Whose::Own(Matched::Name)
        );
        assert!(matches!(
            whose("ARD Cameroun", &ard, &others),
            Whose::Ambiguous { .. }
        ));
        assert_eq!(whose("Croix-Rouge", &ard, &others), Whose::Other);
    }
}
