//! Reading a mapping spreadsheet (CSV): columns recognised by a documented set of French and
//! English headers, every value checked, every row that cannot be read reported with its
//! row number, column and why — never dropped silently.
//!
//! Pure: text in, rows or errors out. What to write, and where, is decided by the node.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ReadError;
use super::headers::{self, ColumnReading, Given};
use super::owner::{self, Matched, Whose};
use crate::directory::fold;
use crate::model::{CapacityStatus, Cost, LegalStatus, OrganisationRecord};
use crate::reference::{Lang, areas, languages, taxonomy};

/// A column the import understands, and the headers that name it (compared without case,
/// accents, spaces, `-` or `_`).
pub const COLUMNS: [(&str, &[&str]); 20] = [
    (
        "organisation",
        &[
            "organisation",
            "organization",
            "org",
            "nom",
            "structure",
            "acteur",
        ],
    ),
    ("acronym", &["sigle", "acronym", "acronyme"]),
    (
        "type",
        &[
            "type",
            "organisation_type",
            "legal_status",
            "statut",
            "type_acteur",
        ],
    ),
    (
        "service",
        &[
            "service",
            "service_name",
            "nom_du_service",
            "activite",
            "prestation",
        ],
    ),
    (
        "dimension",
        &["dimension", "domaine", "pilier", "sector", "secteur"],
    ),
    (
        "category",
        &[
            "categorie",
            "category",
            "categories",
            "sous_secteur",
            "subsector",
        ],
    ),
    ("region", &["region", "region_code", "adm1", "adm1_code"]),
    (
        "department",
        &[
            "departement",
            "department",
            "department_code",
            "adm2",
            "adm2_code",
        ],
    ),
    ("town", &["ville", "town", "city", "localite", "commune"]),
    ("address", &["adresse", "address", "quartier"]),
    ("latitude", &["latitude", "lat"]),
    ("longitude", &["longitude", "lon", "lng", "long"]),
    ("cost", &["cout", "cost", "tarif", "frais"]),
    ("capacity", &["capacite", "capacity", "disponibilite"]),
    ("places", &["places", "places_disponibles", "seats"]),
    ("languages", &["langues", "languages", "langue", "language"]),
    (
        "email",
        &["email", "courriel", "contact_email", "e_mail", "mail"],
    ),
    ("phone", &["telephone", "phone", "contact_phone", "tel"]),
    ("description", &["description", "details"]),
    (
        "eligibility",
        &["eligibilite", "eligibility", "public_cible", "criteres"],
    ),
];

/// Columns a mapping must have.
pub const REQUIRED: [&str; 5] = ["organisation", "service", "dimension", "region", "town"];

pub(super) fn header_key(text: &str) -> String {
    fold(text)
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ')
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("_")
}

/// One value that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// Row number in the file (the header is row 1).
    pub row: usize,
    /// The column (the file's header text).
    pub column: String,
    /// The value found.
    pub value: String,
    /// Why it was refused, with what is accepted.
    pub why: String,
}

/// One row, read and checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MappingRow {
    /// Row number in the file.
    pub row: usize,
    /// Organisation name.
    pub organisation: String,
    /// Acronym.
    pub acronym: Option<String>,
    /// Legal status.
    pub legal_status: Option<LegalStatus>,
    /// Service name.
    pub service: String,
    /// Dimension.
    pub dimension: taxonomy::Dimension,
    /// Category codes.
    pub categories: Vec<String>,
    /// Region P-code.
    pub region: String,
    /// Department P-code.
    pub department: Option<String>,
    /// Town.
    pub town: String,
    /// Address or directions.
    pub address: Option<String>,
    /// Latitude and longitude, both or neither.
    pub coordinates: Option<(f64, f64)>,
    /// Cost.
    pub cost: Cost,
    /// Capacity.
    pub capacity: CapacityStatus,
    /// Places.
    pub places: Option<u32>,
    /// Language codes.
    pub languages: Vec<String>,
    /// Contact e-mail of the organisation.
    pub email: Option<String>,
    /// Contact phone of the organisation.
    pub phone: Option<String>,
    /// Service description.
    pub description: Option<String>,
    /// Who the service is for.
    pub eligibility: Option<String>,
}

/// What reading a file gave.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadMapping {
    /// Rows read without error.
    pub rows: Vec<MappingRow>,
    /// Every value that could not be read (its row is left out).
    pub errors: Vec<RowError>,
    /// Headers the import does not read (their columns are ignored, and said so).
    pub unknown_columns: Vec<String>,
    /// How each column of the file was read, or why it was not.
    pub columns: Vec<ColumnReading>,
}

/// How to read a mapping: the user's language for messages, and what the user said of the
/// file's columns (`--column`, a mapping file).
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// The language of the messages.
    pub lang: Lang,
    /// Which column is which, as the user said.
    pub given: Given,
}

pub(super) fn legal_status(text: &str, lang: Lang) -> Result<LegalStatus, String> {
    match fold(text).as_str() {
        "gouvernement" | "government" | "etat" | "ministere" | "public" | "administration"
        | "service public" | "collectivite territoriale" | "commune" => Ok(LegalStatus::Government),
        "ong" | "ngo" | "association" | "non-profit" | "nonprofit" | "not-for-profit"
        | "not for profit" | "charity" | "fondation" | "foundation"
        | "organisation confessionnelle" | "confessionnelle" | "faith-based organisation"
        | "faith-based organization" | "faith-based" => Ok(LegalStatus::Ngo),
        "international" | "oi" | "io" | "organisation internationale" | "international organisation"
        | "international organization" | "agence des nations unies" | "un agency" => {
            Ok(LegalStatus::International)
        }
        "prive" | "private" | "entreprise" | "secteur prive" | "private sector" | "entreprise privee"
        | "societe" | "sarl" | "sa" | "company" | "limited company" | "ltd" | "llc"
        | "corporation" | "for-profit" | "for profit" => Ok(LegalStatus::Private),
        "communautaire" | "community" | "obc" | "cbo" | "association communautaire"
        | "organisation communautaire" | "community-based organisation"
        | "community-based organization" | "cooperative" | "gic" => Ok(LegalStatus::Community),
        _ => Err(lang.pick(
            "not one of: gouvernement/government, ong/ngo (association, fondation, confessionnelle), international, prive/private (entreprise, SARL), communautaire/community (coopérative, GIC)",
            "n'est pas l'un de : gouvernement (ministère, commune), ONG (association, fondation, confessionnelle), international (agence des Nations unies), privé (entreprise, SARL), communautaire (association communautaire, coopérative, GIC)",
        ).into()),
    }
}

pub(super) fn dimension(text: &str, lang: Lang) -> Result<taxonomy::Dimension, String> {
    match fold(text).as_str() {
        "economique" | "economic" | "economie" => Ok(taxonomy::Dimension::Economic),
        "sociale" | "social" => Ok(taxonomy::Dimension::Social),
        "psychosociale" | "psychosocial" => Ok(taxonomy::Dimension::Psychosocial),
        _ => Err(lang
            .pick(
                "not one of: économique/economic, sociale/social, psychosociale/psychosocial",
                "n'est pas l'une de : économique, sociale, psychosociale",
            )
            .into()),
    }
}

/// `text` folded (case, accents) with each word's plural mark taken off ("Formations
/// professionnelles" → "formation professionnelle"), and `_`/`-` read as spaces.
fn singular(text: &str) -> String {
    fold(text)
        .replace(['_', '-'], " ")
        .split_whitespace()
        .map(|word| {
            if word.len() > 3 && (word.ends_with('s') || word.ends_with('x')) {
                &word[..word.len() - 1]
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A category as people write it: its code, or its label in French or English, without
/// regard to case, accents or plurals; a close misspelling is answered with "did you
/// mean", and the accepted labels are listed.
pub(super) fn category(text: &str, lang: Lang) -> Result<String, String> {
    let wanted = singular(text);
    if let Some(c) = taxonomy::CATEGORIES.iter().find(|c| {
        singular(c.code) == wanted
            || singular(c.label_fr) == wanted
            || singular(c.label_en) == wanted
    }) {
        return Ok(c.code.to_owned());
    }
    let closest = taxonomy::CATEGORIES
        .iter()
        .flat_map(|c| [(c, c.label_fr), (c, c.label_en)])
        .map(|(c, label)| (strsim::levenshtein(&singular(label), &wanted), c, label))
        .min_by_key(|(distance, ..)| *distance);
    let hint = match closest {
        Some((distance, c, label)) if distance <= (wanted.chars().count() / 5).max(2) => lang.pick(
            format!("did you mean \"{label}\" ({})? ", c.code),
            format!("vouliez-vous dire « {label} » ({}) ? ", c.code),
        ),
        _ => String::new(),
    };
    let accepted = taxonomy::CATEGORIES
        .iter()
        .map(|c| format!("{}: {}", c.code, c.label(lang)))
        .collect::<Vec<_>>()
        .join("; ");
    Err(lang.pick(
        format!("not a category; {hint}accepted (code: label, in English or French): {accepted}"),
        format!("n'est pas une catégorie ; {hint}acceptées (code : libellé, en français ou en anglais) : {accepted}"),
    ))
}

pub(super) fn region(text: &str, lang: Lang) -> Result<String, String> {
    if let Some(r) = areas::region(text) {
        return Ok(r.pcode.to_owned());
    }
    let wanted = fold(text);
    areas::REGIONS
        .iter()
        .find(|r| fold(r.name_fr) == wanted || fold(r.name_en) == wanted)
        .map(|r| r.pcode.to_owned())
        .ok_or_else(|| {
            lang.pick(
                format!(
                    "not a region P-code, ISO code or name; regions: {}",
                    areas::region_list()
                ),
                format!(
                    "ni un P-code, ni un code ISO, ni un nom de région ; régions : {}",
                    areas::region_list()
                ),
            )
        })
}

/// A cell of languages as people write it — codes or names in French or English,
/// separated by commas, semicolons, slashes, "et"/"and" or spaces ("Français, anglais",
/// "fr/en", "Fulfulde et Cameroon Pidgin") — as ISO 639 codes; else which one is not read
/// and why.
pub fn languages(cell: &str, lang: Lang) -> Result<Vec<String>, String> {
    let mut codes: Vec<String> = Vec::new();
    let spaced = format!(" {} ", cell.replace(['\n', '\t'], " "));
    let separated = spaced
        .replace(" et ", ",")
        .replace(" and ", ",")
        .replace(" ET ", ",")
        .replace(" AND ", ",");
    for piece in separated.split([',', ';', '/', '+']) {
        let piece = piece.trim();
        if piece.is_empty() {
            continue;
        }
        // A name of several words ("Cameroon Pidgin"), else several names or codes
        // separated by spaces ("fr en").
        let not = |what: &str, why: languages::NotALanguage| {
            lang.pick(
                format!("{what:?} is {}", why.message(lang)),
                format!("« {what} » : {}", why.message(lang)),
            )
        };
        let read = languages::code_of(piece).map(|c| vec![c]).or_else(|why| {
            let words: Vec<&str> = piece.split_whitespace().collect();
            if words.len() < 2 {
                return Err(not(piece, why));
            }
            words
                .iter()
                .map(|w| languages::code_of(w).map_err(|why| not(w, why)))
                .collect()
        })?;
        for code in read {
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
    }
    Ok(codes)
}

/// A region given as people give it — P-code (`CM005`), ISO code, or name in French or
/// English, any case or accents ("littoral", "Extreme-Nord", "Far North") — as its P-code;
/// else why not, listing the regions. What the import and `directory search --region` take.
pub fn region_code(text: &str, lang: Lang) -> Result<String, String> {
    region(text, lang)
}

/// A department given as people give it — P-code (`CM005004`) or name in French or English,
/// any case or accents ("Wouri", "mfoundi") — as its P-code; else why not, listing the
/// departments. What `directory search --department` takes.
pub fn department_code(text: &str, lang: Lang) -> Result<String, String> {
    if let Some(d) = areas::department(text) {
        return Ok(d.pcode.to_owned());
    }
    let wanted = fold(text);
    let found: Vec<&areas::Department> = areas::DEPARTMENTS
        .iter()
        .filter(|d| fold(d.name_fr) == wanted || fold(d.name_en) == wanted)
        .collect();
    match found.as_slice() {
        [one] => Ok(one.pcode.to_owned()),
        [] => Err(lang.pick(
            format!(
                "not a department P-code or name; departments: {}",
                areas::department_list(None)
            ),
            format!(
                "ni un P-code, ni un nom de département ; départements : {}",
                areas::department_list(None)
            ),
        )),
        several => {
            let codes = several
                .iter()
                .map(|d| d.pcode)
                .collect::<Vec<_>>()
                .join(", ");
            Err(lang.pick(
                format!("the name of several departments: {codes}; give its P-code"),
                format!("le nom de plusieurs départements : {codes} ; donnez son P-code"),
            ))
        }
    }
}

pub(super) fn department(text: &str, region: &str, lang: Lang) -> Result<String, String> {
    let wanted = fold(text);
    let found = areas::department(text).or_else(|| {
        areas::departments_of(region)
            .find(|d| fold(d.name_fr) == wanted || fold(d.name_en) == wanted)
    });
    match found {
        Some(d) if d.region == region => Ok(d.pcode.to_owned()),
        Some(d) => Err(lang.pick(
            format!("{} is not in region {region}", d.pcode),
            format!("{} n'est pas dans la région {region}", d.pcode),
        )),
        None => Err(lang.pick(
            format!(
                "not a department of region {region}; its departments: {}",
                areas::department_list(Some(region))
            ),
            format!(
                "n'est pas un département de la région {region} ; ses départements : {}",
                areas::department_list(Some(region))
            ),
        )),
    }
}

/// The highest fee read without question (10 million FCFA); above it the cell is reported.
pub const MAX_FEE_XAF: u64 = 10_000_000;

/// The cost forms the import reads, as its messages list them.
const COST_FORMS: &str = "Gratuit (or free); Partage des coûts, Participation aux frais \
    (or cost shared); an amount in FCFA, with or without words: 15000, 15 000 FCFA, \
    15.000 F CFA, Payant : 15 000 FCFA";

/// The same, in French.
const COST_FORMS_FR: &str = "Gratuit ; Partage des coûts, Participation aux frais ; un \
    montant en FCFA, avec ou sans mots : 15000, 15 000 FCFA, 15.000 F CFA, Payant : 15 000 FCFA";

/// A cost as people write it in French or English: "Gratuit", "Partage des coûts",
/// "Participation aux frais", "Payant : 15 000 FCFA", "15.000 F CFA", "fee:5000"; a fee
/// without an amount ("Payant", "Sur devis"), a negative or an absurd amount is reported
/// with the forms accepted.
pub(super) fn cost(text: &str, lang: Lang) -> Result<Cost, String> {
    let forms = lang.pick(COST_FORMS, COST_FORMS_FR);
    let folded = fold(text)
        .replace(['\u{a0}', '\u{202f}'], " ")
        .trim()
        .to_owned();
    match folded.as_str() {
        "" | "gratuit" | "gratuite" | "free" | "sans frais" | "aucun frais" | "0" => {
            return Ok(Cost::Free);
        }
        "partage"
        | "partage des couts"
        | "couts partages"
        | "participation aux frais"
        | "participation"
        | "contribution"
        | "cofinance"
        | "cost shared"
        | "cost-shared"
        | "cost_shared"
        | "shared cost" => return Ok(Cost::CostShared),
        _ => {}
    }
    // The amount, with the words around it taken off.
    let mut amount = folded.clone();
    for word in [
        "payant", "fee:", "fee", "frais", "prix", "cout", ":", "fcfa", "f cfa", "xaf", "cfa",
    ] {
        amount = amount.replace(word, " ");
    }
    let amount = amount.trim().trim_end_matches('f').trim().to_owned();
    let negative = amount.starts_with('-');
    let digits: String = amount
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '.' | ',' | '\'' | '-'))
        .collect();
    if digits.is_empty() || !digits.chars().any(|c| c.is_ascii_digit()) {
        let no_amount =
            folded.contains("payant") || folded.contains("devis") || folded.contains("fee");
        return Err(match (lang, no_amount) {
            (Lang::En, true) => format!(
                "not a cost the import reads (a fee without an amount: write the amount in FCFA); accepted: {forms}"
            ),
            (Lang::En, false) => format!("not a cost the import reads; accepted: {forms}"),
            (Lang::Fr, true) => format!(
                "n'est pas un coût que l'import lit (payant sans montant : écrivez le montant en FCFA) ; acceptés : {forms}"
            ),
            (Lang::Fr, false) => {
                format!("n'est pas un coût que l'import lit ; acceptés : {forms}")
            }
        });
    }
    match digits.parse::<u64>() {
        _ if negative => Err(lang.pick(
            format!("a negative amount; accepted: {forms}"),
            format!("un montant négatif ; acceptés : {forms}"),
        )),
        Ok(0) => Ok(Cost::Free),
        Ok(amount_xaf) if amount_xaf > MAX_FEE_XAF => Err(lang.pick(
            format!(
                "{amount_xaf} FCFA is over {MAX_FEE_XAF} FCFA: check the amount (a typing slip?)"
            ),
            format!(
                "{amount_xaf} FCFA dépasse {MAX_FEE_XAF} FCFA : vérifiez le montant (une faute de frappe ?)"
            ),
        )),
        Ok(amount_xaf) => Ok(Cost::Fee { amount_xaf }),
        Err(_) => Err(lang.pick(
            format!("not a cost the import reads; accepted: {forms}"),
            format!("n'est pas un coût que l'import lit ; acceptés : {forms}"),
        )),
    }
}

/// Words people write for a number they do not know ("plusieurs", "illimité"): reported,
/// never read as a number of places.
const NOT_A_NUMBER: [&str; 12] = [
    "plusieurs",
    "illimite",
    "illimitee",
    "beaucoup",
    "variable",
    "indetermine",
    "selon",
    "unlimited",
    "several",
    "many",
    "various",
    "nombreux",
];

/// A capacity as people write it: disponible/available, liste d'attente/waitlist,
/// complet/full — or a number, which is the places (available when above 0, full at 0).
pub(super) fn capacity(text: &str, lang: Lang) -> Result<(CapacityStatus, Option<u32>), String> {
    let folded = fold(text);
    match folded.trim() {
        "" | "disponible" | "available" | "ouvert" => return Ok((CapacityStatus::Available, None)),
        "liste d'attente" | "liste d attente" | "liste attente" | "waitlist" | "waiting list" => {
            return Ok((CapacityStatus::Waitlist, None));
        }
        "complet" | "full" | "ferme" => return Ok((CapacityStatus::Full, None)),
        _ => {}
    }
    match places(text, lang) {
        Ok(Some(0)) => Ok((CapacityStatus::Full, Some(0))),
        Ok(Some(n)) => Ok((CapacityStatus::Available, Some(n))),
        _ if NOT_A_NUMBER.iter().any(|w| folded.contains(w)) => Err(lang.pick(
            format!(
                "{text:?} says no number: write the number of places (e.g. 12), or one of \
                 disponible/available, liste d'attente/waitlist, complet/full"
            ),
            format!(
                "« {text} » ne dit pas de nombre : écrivez le nombre de places (par ex. 12), \
                 ou l'un de : disponible, liste d'attente, complet"
            ),
        )),
        _ => Err(lang
            .pick(
                "not one of: disponible/available, liste d'attente/waitlist, complet/full, or a number of places",
                "n'est pas l'un de : disponible, liste d'attente, complet, ou un nombre de places",
            )
            .into()),
    }
}

/// A number of places as people write it ("12", "12 places", "environ 12"); None when
/// empty; words without a number ("plusieurs", "illimité") are reported.
pub(super) fn places(text: &str, lang: Lang) -> Result<Option<u32>, String> {
    let folded = fold(text);
    let mut rest = folded.trim().to_owned();
    for word in ["places", "place", "environ", "about", "seats", "~", "+"] {
        rest = rest.replace(word, " ");
    }
    let rest = rest.trim();
    if rest.is_empty() && folded.trim().is_empty() {
        return Ok(None);
    }
    match rest.replace([' ', '.', '\u{a0}'], "").parse::<u32>() {
        Ok(n) => Ok(Some(n)),
        Err(_) if NOT_A_NUMBER.iter().any(|w| folded.contains(w)) => Err(lang.pick(
            format!(
                "{text:?} says no number: write the number of places (e.g. 12), or leave it empty"
            ),
            format!(
                "« {text} » ne dit pas de nombre : écrivez le nombre de places (par ex. 12), ou laissez vide"
            ),
        )),
        Err(_) => Err(lang
            .pick(
                "not a whole number of places (e.g. 12)",
                "n'est pas un nombre entier de places (par ex. 12)",
            )
            .into()),
    }
}

fn optional(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Reads a mapping from CSV text (comma or semicolon separated, as spreadsheets save it).
pub fn read_csv(text: &str, options: &ReadOptions) -> Result<ReadMapping, ReadError> {
    let text = text.trim_start_matches('\u{feff}');
    let first_line = text.lines().next().unwrap_or_default();
    let delimiter = if first_line.matches(';').count() > first_line.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| ReadError::HeaderRow {
            file: String::new(),
            reason: e.to_string(),
        })?
        .iter()
        .map(str::to_owned)
        .collect();
    let records = reader.records().enumerate().map(|(index, record)| {
        (
            index + 2,
            record
                .map(|r| r.iter().map(str::to_owned).collect())
                .map_err(|e| e.to_string()),
        )
    });
    read_table(headers, records, options)
}

/// Reads a mapping from an Excel workbook (`.xlsx`, also `.xls`, `.ods`): the sheet named
/// `sheet`, or the first one. Row numbers are the spreadsheet's.
pub fn read_workbook(
    bytes: &[u8],
    sheet: Option<&str>,
    options: &ReadOptions,
) -> Result<ReadMapping, ReadError> {
    // calamine panics on some malformed workbooks (the import_xlsx fuzz target found a
    // cell reference whose column overflows): a panic is an error naming the file's fault.
    // The reader answers its own errors inside `Ok`; the guard adds a panic's.
    crate::automerge_guard::guarded_by("the spreadsheet reader (calamine)", "workbook", || {
        Ok::<_, std::convert::Infallible>(read_workbook_inner(bytes, sheet, options))
    })
    .map_err(ReadError::Reader)
    .and_then(|read| read)
}

fn read_workbook_inner(
    bytes: &[u8],
    sheet: Option<&str>,
    options: &ReadOptions,
) -> Result<ReadMapping, ReadError> {
    use calamine::Reader;
    let mut workbook = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes))
        .map_err(|e| ReadError::NotAWorkbook(e.to_string()))?;
    let names = workbook.sheet_names();
    let name = match sheet {
        Some(wanted) => names
            .iter()
            .find(|n| fold(n) == fold(wanted))
            .cloned()
            .ok_or_else(|| ReadError::NoSuchSheet {
                wanted: wanted.to_owned(),
                sheets: names.clone(),
            })?,
        None => names.first().cloned().ok_or(ReadError::NoSheet)?,
    };
    let range = workbook
        .worksheet_range(&name)
        .map_err(|e| ReadError::Sheet {
            sheet: name.clone(),
            reason: format!("cannot be read: {e}"),
        })?;
    let first = range.start().map_or(1, |(row, _)| row as usize + 1);
    let first_column = range.start().map_or(0, |(_, column)| column as usize);
    let mut rows = range.rows().map(|cells| {
        let mut values = vec![String::new(); first_column];
        values.extend(cells.iter().map(|c| c.to_string().trim().to_owned()));
        values
    });
    let headers = rows.next().ok_or_else(|| ReadError::Sheet {
        sheet: name.clone(),
        reason: "is empty".into(),
    })?;
    read_table(
        headers,
        rows.enumerate()
            .map(|(index, row)| (first + 1 + index, Ok(row))),
        options,
    )
}

/// Reads a mapping from its header row and its rows (row number, cells or why the row
/// cannot be read).
pub fn read_table(
    headers: Vec<String>,
    records: impl Iterator<Item = (usize, Result<Vec<String>, String>)>,
    options: &ReadOptions,
) -> Result<ReadMapping, ReadError> {
    let lang = options.lang;
    let records: Vec<(usize, Result<Vec<String>, String>)> = records.collect();
    let values: Vec<Vec<String>> = records
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().cloned())
        .collect();
    let readings =
        headers::recognise(&headers, &values, &options.given, lang).map_err(ReadError::Columns)?;
    drop(values);
    let columns: BTreeMap<&'static str, usize> = readings
        .iter()
        .filter_map(|r| {
            let column = COLUMNS
                .iter()
                .find(|(c, _)| Some(*c) == r.column.as_deref())?;
            Some((column.0, r.position - 1))
        })
        .collect();
    let mut read = ReadMapping {
        unknown_columns: readings
            .iter()
            .filter(|r| r.column.is_none())
            .map(|r| r.header.clone())
            .collect(),
        columns: readings,
        ..Default::default()
    };
    let missing: Vec<&str> = REQUIRED
        .iter()
        .filter(|c| !columns.contains_key(*c))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(missing_columns(&missing, read.columns, lang));
    }
    for (row, record) in records {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                read.errors.push(RowError {
                    row,
                    column: String::new(),
                    value: String::new(),
                    why: lang.pick(
                        format!("the row cannot be read: {e}"),
                        format!("la ligne ne peut pas être lue : {e}"),
                    ),
                });
                continue;
            }
        };
        if record.iter().all(|v| v.trim().is_empty()) {
            continue;
        }
        let mut errors = Vec::new();
        let get = |column: &str| -> &str {
            columns
                .get(column)
                .and_then(|i| record.get(*i))
                .map(|v| v.trim())
                .unwrap_or("")
        };
        let mut fail = |column: &str, why: String| {
            let header = columns
                .get(column)
                .and_then(|i| headers.get(*i))
                .cloned()
                .unwrap_or_else(|| column.to_owned());
            errors.push(RowError {
                row,
                value: get(column).to_owned(),
                column: header,
                why,
            });
        };
        let required = |column: &str, fail: &mut dyn FnMut(&str, String)| -> String {
            let value = get(column).to_owned();
            if value.is_empty() {
                fail(
                    column,
                    lang.pick("required, and empty", "obligatoire, et vide")
                        .into(),
                );
            }
            value
        };
        let organisation = required("organisation", &mut fail);
        let service = required("service", &mut fail);
        let town = required("town", &mut fail);
        let dimension = dimension(get("dimension"), lang)
            .map_err(|e| fail("dimension", e))
            .ok();
        let region = region(get("region"), lang)
            .map_err(|e| fail("region", e))
            .ok();
        let department = match (optional(get("department")), &region) {
            (Some(text), Some(r)) => department(&text, r, lang)
                .map_err(|e| fail("department", e))
                .ok(),
            _ => None,
        };
        let legal_status = optional(get("type"))
            .and_then(|t| legal_status(&t, lang).map_err(|e| fail("type", e)).ok());
        let mut categories = Vec::new();
        for part in get("category")
            .split([';', '|', ','])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            match category(part, lang) {
                Ok(code) => categories.push(code),
                Err(e) => fail("category", e),
            }
        }
        if let Some(stated) = dimension
            && let Some(wrong) = categories
                .iter()
                .find(|c| taxonomy::category(c).is_some_and(|c| c.dimension != stated))
        {
            fail(
                "category",
                lang.pick(
                    format!("category {wrong} does not belong to dimension {stated}"),
                    format!(
                        "la catégorie {wrong} n'appartient pas à la dimension {}",
                        stated.label(lang)
                    ),
                ),
            );
        }
        let cost = cost(get("cost"), lang).map_err(|e| fail("cost", e)).ok();
        let (capacity, places_in_capacity) = match capacity(get("capacity"), lang) {
            Ok((status, places)) => (Some(status), places),
            Err(e) => {
                fail("capacity", e);
                (None, None)
            }
        };
        let places = places(get("places"), lang)
            .map_err(|e| fail("places", e))
            .ok()
            .flatten()
            .or(places_in_capacity);
        let coordinate = |column: &str, range: f64, fail: &mut dyn FnMut(&str, String)| {
            optional(get(column)).and_then(|v| match v.replace(',', ".").parse::<f64>() {
                Ok(x) if x.abs() <= range => Some(x),
                _ => {
                    fail(
                        column,
                        lang.pick(
                            format!("not a number of degrees between -{range} and {range}"),
                            format!("n'est pas un nombre de degrés entre -{range} et {range}"),
                        ),
                    );
                    None
                }
            })
        };
        let latitude = coordinate("latitude", 90.0, &mut fail);
        let longitude = coordinate("longitude", 180.0, &mut fail);
        if latitude.is_some() != longitude.is_some() {
            fail(
                "latitude",
                lang.pick(
                    "give both latitude and longitude, or neither",
                    "donnez la latitude et la longitude, ou aucune des deux",
                )
                .into(),
            );
        }
        let languages = match languages(get("languages"), lang) {
            Ok(codes) => codes,
            Err(why) => {
                fail("languages", why);
                Vec::new()
            }
        };
        if !errors.is_empty() {
            read.errors.extend(errors);
            continue;
        }
        let (Some(dimension), Some(region), Some(cost), Some(capacity)) =
            (dimension, region, cost, capacity)
        else {
            continue;
        };
        read.rows.push(MappingRow {
            row,
            organisation,
            acronym: optional(get("acronym")),
            legal_status,
            service,
            dimension,
            categories,
            region,
            department,
            town,
            address: optional(get("address")),
            coordinates: latitude.zip(longitude),
            cost,
            capacity,
            places,
            languages,
            email: optional(get("email")),
            phone: optional(get("phone")),
            description: optional(get("description")),
            eligibility: optional(get("eligibility")),
        });
    }
    Ok(read)
}

/// The error of a file lacking required columns: which, how each of the file's columns was
/// read, and how to say which is which.
fn missing_columns(missing: &[&str], columns: Vec<ColumnReading>, lang: Lang) -> ReadError {
    let readings = columns
        .iter()
        .map(|c| {
            format!(
                "{:?} → {}",
                c.header,
                match &c.column {
                    Some(column) => format!("{column} ({})", c.how),
                    None => c.how.clone(),
                }
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let example = format!("--column \"HEADER={}\"", missing[0]);
    let accepted = COLUMNS
        .iter()
        .map(|(c, names)| format!("{c} ({})", names.join("/")))
        .collect::<Vec<_>>()
        .join("; ");
    let message = lang.pick(
        format!(
            "the file has no column read as {}. Its columns, as read: {readings}. Say which \
             column it is with {example} (repeatable) or --columns-file FILE; headers read \
             without being told: {accepted}, and headers holding their words",
            missing.join(", ")
        ),
        format!(
            "le fichier n'a pas de colonne lue comme {}. Ses colonnes, telles que lues : \
             {readings}. Dites laquelle c'est avec {example} (répétable) ou \
             --columns-file FICHIER ; en-têtes lus sans qu'on le dise : {accepted}, et les en-têtes qui \
             contiennent leurs mots",
            missing.join(", ")
        ),
    );
    ReadError::MissingColumns {
        missing: missing.iter().map(|c| (*c).to_owned()).collect(),
        columns,
        message,
    }
}

#[cfg(test)]
mod tests {
    fn english() -> super::ReadOptions {
        super::ReadOptions {
            lang: crate::reference::Lang::En,
            ..Default::default()
        }
    }

    #[test]
    fn costs_are_read_as_people_write_them_in_french() {
        for (written, read) in [
            ("Gratuit", Cost::Free),
            ("gratuite", Cost::Free),
            ("", Cost::Free),
            ("Partage des coûts", Cost::CostShared),
            ("Participation aux frais", Cost::CostShared),
            ("Payant : 15 000 FCFA", Cost::Fee { amount_xaf: 15_000 }),
            ("15.000 F CFA", Cost::Fee { amount_xaf: 15_000 }),
            ("15\u{a0}000 FCFA", Cost::Fee { amount_xaf: 15_000 }),
            ("5000", Cost::Fee { amount_xaf: 5_000 }),
            ("fee:2000", Cost::Fee { amount_xaf: 2_000 }),
            ("2 500 XAF", Cost::Fee { amount_xaf: 2_500 }),
        ] {
            assert_eq!(cost(written, Lang::En), Ok(read), "{written}");
        }
        for (written, says) in [
            ("Sur devis", "without an amount"),
            ("Payant", "without an amount"),
            ("-5000 FCFA", "negative"),
            ("150 000 000 FCFA", "check the amount"),
            ("beaucoup", "accepted: Gratuit"),
        ] {
            let why = cost(written, Lang::En).unwrap_err();
            assert!(why.contains(says), "{written}: {why}");
        }
    }

    #[test]
    fn categories_are_read_without_case_accents_or_plurals_and_misspellings_get_a_hint() {
        assert_eq!(
            category("vocational_training", Lang::En).unwrap(),
            "vocational_training"
        );
        assert_eq!(
            category("Formation professionnelle", Lang::En).unwrap(),
            "vocational_training"
        );
        assert_eq!(
            category("formations professionnelles", Lang::En).unwrap(),
            "vocational_training"
        );
        assert_eq!(
            category("FORMATION PROFESSIONNELLE", Lang::En).unwrap(),
            "vocational_training"
        );
        assert_eq!(
            category("Vocational trainings", Lang::En).unwrap(),
            "vocational_training"
        );
        let why = category("Formation profesionelle", Lang::En).unwrap_err();
        assert!(
            why.contains("did you mean \"Formation professionnelle\""),
            "{why}"
        );
        let why = category("Astronautique", Lang::En).unwrap_err();
        assert!(!why.contains("did you mean"), "{why}");
        assert!(
            why.contains("vocational_training: Vocational training"),
            "{why}"
        );
        // The accepted labels in the user's language.
        let why = category("Astronautique", Lang::Fr).unwrap_err();
        assert!(
            why.starts_with("n'est pas une catégorie")
                && why.contains("vocational_training: Formation professionnelle"),
            "{why}"
        );
        let why = category("Formation profesionelle", Lang::Fr).unwrap_err();
        assert!(
            why.contains("vouliez-vous dire « Formation professionnelle »"),
            "{why}"
        );
    }

    #[test]
    fn a_number_in_a_capacity_column_is_places_and_words_for_many_are_reported() {
        assert_eq!(
            capacity("12", Lang::En).unwrap(),
            (CapacityStatus::Available, Some(12))
        );
        assert_eq!(
            capacity("0", Lang::En).unwrap(),
            (CapacityStatus::Full, Some(0))
        );
        assert_eq!(
            capacity("Complet", Lang::En).unwrap(),
            (CapacityStatus::Full, None)
        );
        assert_eq!(
            capacity("20 places", Lang::En).unwrap(),
            (CapacityStatus::Available, Some(20))
        );
        for words in ["plusieurs", "Illimité", "beaucoup"] {
            let why = capacity(words, Lang::En).unwrap_err();
            assert!(why.contains("says no number"), "{words}: {why}");
            let why = places(words, Lang::En).unwrap_err();
            assert!(why.contains("says no number"), "{words}: {why}");
        }
        assert_eq!(places("environ 15", Lang::En).unwrap(), Some(15));
        assert_eq!(places("", Lang::En).unwrap(), None);
        assert!(places("douze", Lang::En).is_err());
    }

    #[test]
    fn organisation_types_as_written_map_to_the_closest_legal_status() {
        for (written, status) in [
            ("Association", LegalStatus::Ngo),
            ("Association communautaire", LegalStatus::Community),
            ("Organisation confessionnelle", LegalStatus::Ngo),
            ("Coopérative", LegalStatus::Community),
            ("GIC", LegalStatus::Community),
            ("SARL", LegalStatus::Private),
            ("Limited Company", LegalStatus::Private),
            ("Ministère", LegalStatus::Government),
            ("Commune", LegalStatus::Government),
            ("Agence des Nations Unies", LegalStatus::International),
        ] {
            assert_eq!(legal_status(written, Lang::En), Ok(status), "{written}");
        }
        assert!(legal_status("Club de football", Lang::En).is_err());
    }

    #[test]
    fn a_cell_of_languages_is_read_as_people_write_it() {
        assert_eq!(
            languages("Français, anglais", Lang::En).unwrap(),
            ["fr", "en"]
        );
        assert_eq!(languages("fr/en", Lang::En).unwrap(), ["fr", "en"]);
        assert_eq!(languages("fr en", Lang::En).unwrap(), ["fr", "en"]);
        assert_eq!(
            languages("Fulfulde et Cameroon Pidgin", Lang::En).unwrap(),
            ["fub", "wes"]
        );
        assert_eq!(
            languages("Arabe; Français", Lang::En).unwrap(),
            ["ar", "fr"]
        );
        assert_eq!(languages("", Lang::En).unwrap(), Vec::<String>::new());
        let why = languages("Français, Klingon", Lang::En).unwrap_err();
        assert!(why.contains("Klingon"), "{why}");
    }

    #[test]
    fn regions_and_departments_are_found_by_code_or_name_in_either_language() {
        assert_eq!(region_code("CM005", Lang::En).unwrap(), "CM005");
        assert_eq!(region_code("littoral", Lang::En).unwrap(), "CM005");
        assert_eq!(region_code("Extreme-Nord", Lang::En).unwrap(), "CM004");
        assert_eq!(region_code("Far North", Lang::En).unwrap(), "CM004");
        assert!(
            region_code("Lagos", Lang::En)
                .unwrap_err()
                .contains("CM005 Littoral")
        );
        assert_eq!(department_code("CM005004", Lang::En).unwrap(), "CM005004");
        assert_eq!(department_code("wouri", Lang::En).unwrap(), "CM005004");
        assert!(
            department_code("Nowhere", Lang::En)
                .unwrap_err()
                .contains("CM005004 Wouri")
        );
    }

    use super::*;

    const SAMPLE: &str = include_str!("../../../../docs/examples/mapping.csv");
    const WITH_ERRORS: &str = include_str!("../../../../docs/examples/mapping-with-errors.csv");

    #[test]
    fn the_sample_mapping_reads_whole() {
        let read = read_csv(SAMPLE, &english()).unwrap();
        assert!(read.errors.is_empty(), "{:?}", read.errors);
        assert!(
            read.unknown_columns.is_empty(),
            "{:?}",
            read.unknown_columns
        );
        assert_eq!(read.rows.len(), 51);
        let organisations: std::collections::BTreeSet<&str> =
            read.rows.iter().map(|r| r.organisation.as_str()).collect();
        assert_eq!(organisations.len(), 33);
        assert!(
            read.rows
                .iter()
                .any(|r| matches!(r.cost, Cost::Fee { amount_xaf: 5000 }))
        );
        assert!(
            read.rows
                .iter()
                .any(|r| r.capacity == CapacityStatus::Waitlist)
        );
    }

    #[test]
    fn every_bad_value_is_reported_with_row_column_and_why() {
        let read = read_csv(WITH_ERRORS, &english()).unwrap();
        assert_eq!(read.rows.len(), 2);
        let found: Vec<(usize, &str)> = read
            .errors
            .iter()
            .map(|e| (e.row, e.column.as_str()))
            .collect();
        assert_eq!(found, vec![(3, "region"), (4, "cout"), (5, "organisation")]);
        assert!(
            read.errors[0].why.contains("CM005 Littoral"),
            "{:?}",
            read.errors[0]
        );
        assert!(read.errors[1].why.contains("FCFA"), "{:?}", read.errors[1]);
    }

    #[test]
    fn rows_naming_this_organisation_by_a_suffix_are_its_own_unless_another_member_answers() {
        use crate::model::{OrganisationRecord, Profile};
        let csv = "organisation,service,dimension,region,ville\n\
            ARD – Bureau de Douala,Écoute,psychosociale,Littoral,Douala\n\
            Association Retour et Dignité,Médiation,psychosociale,Centre,Yaoundé\n\
            ARD,Orientation,psychosociale,Centre,Yaoundé\n\
            ARD Jeunesse,Sport,sociale,Centre,Yaoundé\n";
        let rows = read_csv(csv, &english()).unwrap().rows;
        let record = |id: &str, name: &str, acronym: &str| {
            OrganisationRecord::new(
                id,
                Profile {
                    acronym: Some(acronym.to_owned()),
                    ..Profile::named(name)
                },
            )
        };
        let ard = record("org-a", "Association Retour et Dignité", "ARD");
        let alone = plan_own(&rows, &ard, &[]);
        assert_eq!(alone.own_rows, 3);
        assert_eq!(
            alone
                .own_names
                .iter()
                .map(|n| (n.name.as_str(), n.matched.clone()))
                .collect::<Vec<_>>(),
            [
                (
                    "ARD – Bureau de Douala",
                    Matched::Suffix {
                        suffix: "Bureau de Douala".into()
                    }
                ),
                ("Association Retour et Dignité", Matched::Name),
                ("ARD", Matched::Acronym),
            ]
        );
        assert_eq!(alone.other_organisations.get("ARD Jeunesse"), Some(&1));
        // Another member with the same acronym: "ARD" and its suffixed form are
        // ambiguous, reported and not imported; the full name stays this organisation's.
        let other = record("org-b", "Action Rurale pour le Développement", "ARD");
        let shared = plan_own(&rows, &ard, &[&other]);
        assert_eq!(shared.own_rows, 1);
        assert_eq!(
            shared
                .ambiguous
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>(),
            ["ARD – Bureau de Douala", "ARD"]
        );
        assert!(shared.ambiguous[0].also[0].contains("org-b"));
        assert!(
            !shared
                .changes
                .iter()
                .any(|c| c.contains("Écoute") || c.contains("Orientation")),
            "{:?}",
            shared.changes
        );
    }

    #[test]
    fn every_organisation_of_the_sample_imports_its_rows_once_and_exports_them() {
        use crate::document::OrganisationDocument;
        use crate::identity::SigningSecret;
        let read = read_csv(SAMPLE, &english()).unwrap();
        let names: std::collections::BTreeSet<&str> =
            read.rows.iter().map(|r| r.organisation.as_str()).collect();
        let mut services = 0;
        for name in names {
            let secret = SigningSecret::generate().unwrap();
            let (mut doc, _) =
                OrganisationDocument::create(&secret, crate::model::Profile::named(name), 1)
                    .unwrap();
            let plan = plan_own(&read.rows, doc.record().unwrap(), &[]);
            assert!(plan.own_rows > 0 && !plan.edits.is_empty(), "{name}");
            for edit in &plan.edits {
                doc.apply_edit(edit, &secret, 2)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            let again = plan_own(&read.rows, doc.record().unwrap(), &[]);
            assert!(again.edits.is_empty(), "{name}: {:?}", again.changes);
            let record = doc.record().unwrap();
            let distinct: std::collections::BTreeSet<String> = read
                .rows
                .iter()
                .filter(|r| r.organisation == name)
                .map(|r| fold(&r.service))
                .collect();
            assert_eq!(record.services.len(), distinct.len(), "{name}");
            services += record.services.len();
            let hsds = crate::cartography::hsds::organization(record, crate::reference::Lang::Fr);
            assert_eq!(
                hsds["services"].as_array().map(Vec::len),
                Some(distinct.len())
            );
        }
        assert!(services >= 45, "{services}");
    }

    /// The CSV text as a workbook whose table starts at `corner` (numbers as numbers, as a
    /// spreadsheet holds them).
    pub(crate) fn workbook_of(text: &str, corner: (u32, u16)) -> Vec<u8> {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.set_name("Cartographie").unwrap();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        for (r, record) in reader.records().enumerate() {
            for (c, value) in record.unwrap().iter().enumerate() {
                let (row, column) = (corner.0 + r as u32, corner.1 + c as u16);
                match value.parse::<f64>() {
                    Ok(n) if !value.starts_with('+') && !value.starts_with('0') => {
                        sheet.write_number(row, column, n).unwrap();
                    }
                    _ => {
                        sheet.write_string(row, column, value).unwrap();
                    }
                };
            }
        }
        workbook.save_to_buffer().unwrap()
    }

    #[test]
    fn a_workbook_reads_as_its_csv_with_the_spreadsheets_row_numbers() {
        let from_csv = read_csv(SAMPLE, &english()).unwrap();
        let shipped = include_bytes!("../../../../docs/examples/mapping.xlsx");
        assert_eq!(read_workbook(shipped, None, &english()).unwrap(), from_csv);
        assert_eq!(
            read_workbook(
                &workbook_of(SAMPLE, (0, 0)),
                Some("cartographie"),
                &english()
            )
            .unwrap(),
            from_csv
        );
        // A table placed lower and further right keeps the spreadsheet's row numbers.
        let moved = read_workbook(&workbook_of(WITH_ERRORS, (3, 2)), None, &english()).unwrap();
        let rows: Vec<usize> = moved.errors.iter().map(|e| e.row).collect();
        assert_eq!(rows, vec![6, 7, 8]);
        assert_eq!(moved.rows.len(), 2);
        let missing = read_workbook(shipped, Some("Feuil9"), &english()).unwrap_err();
        assert!(
            matches!(&missing, ReadError::NoSuchSheet { sheets, .. } if sheets.iter().any(|s| s.contains("Cartographie"))),
            "{missing}"
        );
        assert!(missing.to_string().contains("Cartographie"), "{missing}");
        assert!(read_workbook(b"not a workbook", None, &english()).is_err());
    }

    #[test]
    fn english_headers_names_and_semicolons_are_understood() {
        let text = "Organization;Acronym;Type;Service name;Sector;Category;Region;Department;City;Cost;Capacity;Languages;Colour\n\
                    Hope Centre;HC;NGO;Counselling;Psychosocial;Counselling;South-West;Fako;Buea;2 500 FCFA;waiting list;en pcm;blue\n";
        let read = read_csv(text, &english()).unwrap();
        assert!(read.errors.is_empty(), "{:?}", read.errors);
        assert_eq!(read.unknown_columns, vec!["Colour".to_owned()]);
        let row = &read.rows[0];
        assert_eq!(row.region, "CM010");
        assert_eq!(row.department.as_deref(), Some("CM010001"));
        assert_eq!(row.cost, Cost::Fee { amount_xaf: 2500 });
        assert_eq!(row.legal_status, Some(LegalStatus::Ngo));
        assert_eq!(row.categories, vec!["counselling".to_owned()]);
        let missing = read_csv("organisation,service\nA,B\n", &english()).unwrap_err();
        assert!(
            matches!(&missing, ReadError::MissingColumns { missing, .. } if missing.contains(&"region".to_owned())),
            "{missing}"
        );
        assert!(
            missing.to_string().contains("dimension, region, town"),
            "{missing}"
        );
    }
}

/// What importing the rows of one organisation changes in its document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImportPlan {
    /// The edits to make, in order (profile, offices, services).
    pub edits: Vec<crate::document::Edit>,
    /// What they do, one line each.
    pub changes: Vec<String>,
    /// Offices and services already as the file says.
    pub unchanged: usize,
    /// Rows of the file that are this organisation's.
    pub own_rows: usize,
    /// Rows of other organisations, by name (they import their own).
    pub other_organisations: BTreeMap<String, usize>,
    /// The names in the file that are this organisation's, each with the rule that
    /// matched and its rows.
    pub own_names: Vec<OwnName>,
    /// Names this organisation and another member both answer to: not imported, reported.
    pub ambiguous: Vec<AmbiguousName>,
}

/// A name in the file that is this organisation's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnName {
    /// The name as the file writes it.
    pub name: String,
    /// The rule that matched.
    pub matched: Matched,
    /// Its rows (or entries).
    pub rows: usize,
}

/// A name in the file that this organisation and another member answer to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmbiguousName {
    /// The name as the file writes it.
    pub name: String,
    /// The other members it also names.
    pub also: Vec<String>,
    /// Its rows (or entries).
    pub rows: usize,
}

impl ImportPlan {
    /// Counts `rows` rows (or entries) of the file under `name`, by whose they are.
    pub fn count(&mut self, name: &str, whose: Whose, rows: usize) {
        match whose {
            Whose::Own(matched) => {
                self.own_rows += rows;
                match self
                    .own_names
                    .iter_mut()
                    .find(|n| n.name == name && n.matched == matched)
                {
                    Some(known) => known.rows += rows,
                    None => self.own_names.push(OwnName {
                        name: name.to_owned(),
                        matched,
                        rows,
                    }),
                }
            }
            Whose::Other => {
                *self.other_organisations.entry(name.to_owned()).or_default() += rows;
            }
            Whose::Ambiguous { also } => match self.ambiguous.iter_mut().find(|a| a.name == name) {
                Some(known) => known.rows += rows,
                None => self.ambiguous.push(AmbiguousName {
                    name: name.to_owned(),
                    also,
                    rows,
                }),
            },
        }
    }
}

fn short_hash(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    data_encoding::HEXLOWER.encode(&hash.finalize()[..5])
}

pub use crate::model::Entries;

/// The id an office gets from its place (the same place always gets the same id).
pub fn office_id(
    town: &str,
    address: Option<&str>,
    region: &str,
    department: Option<&str>,
) -> String {
    format!(
        "off-{}",
        short_hash(&[
            &fold(town),
            &fold(address.unwrap_or("")),
            region,
            department.unwrap_or(""),
        ])
    )
}

/// The id of the draft `publisher` makes of the organisation named `name` (the same
/// mapping imported again gives the same ids).
pub fn draft_id(publisher: &str, name: &str) -> String {
    format!("dft-{}", short_hash(&[publisher, &fold(name)]))
}

/// True if `name` is the name or acronym of `record`'s organisation (case and accents
/// ignored).
pub fn names(record: &OrganisationRecord, name: &str) -> bool {
    let name = fold(name.trim());
    fold(&record.profile.name) == name || record.profile.acronym.as_deref().map(fold) == Some(name)
}

/// The id a service gets from its name.
pub fn service_id(name: &str) -> String {
    format!("svc-{}", short_hash(&[&fold(name)]))
}

/// The rows that are `record`'s organisation's (by name, acronym, or either with a suffix
/// naming a branch or a country — see [`owner`](super::owner); a name another of `others`
/// also answers to is reported as ambiguous, not imported), and the edits that make its
/// document say what they say. Ids are derived from the content (an office from its town,
/// address and area; a service from its name), so importing the same file again plans
/// nothing.
pub fn plan_own(
    rows: &[MappingRow],
    record: &OrganisationRecord,
    others: &[&OrganisationRecord],
) -> ImportPlan {
    let mut whose_name: BTreeMap<&str, Whose> = BTreeMap::new();
    let mut counts = ImportPlan::default();
    let mut own = Vec::new();
    for row in rows {
        let name = row.organisation.trim();
        let whose = whose_name
            .entry(name)
            .or_insert_with(|| owner::whose(name, record, others))
            .clone();
        if matches!(whose, Whose::Own(_)) {
            own.push(row);
        }
        counts.count(name, whose, 1);
    }
    ImportPlan {
        own_rows: counts.own_rows,
        other_organisations: counts.other_organisations,
        own_names: counts.own_names,
        ambiguous: counts.ambiguous,
        ..plan_entries(&entries_of_rows(&own), record)
    }
}

/// What one organisation's rows of a mapping say it is.
pub fn entries_of_rows(own: &[&MappingRow]) -> Entries {
    let mut entries = Entries {
        acronym: own.iter().find_map(|r| r.acronym.clone()),
        legal_status: own.iter().find_map(|r| r.legal_status),
        ..Default::default()
    };
    for row in own {
        if row.email.is_some() || row.phone.is_some() {
            let contact = crate::model::Contact {
                email: row.email.clone(),
                phone: row.phone.clone(),
                ..Default::default()
            };
            if !entries.contacts.contains(&contact) {
                entries.contacts.push(contact);
            }
        }
    }
    // Offices, one per distinct place.
    let mut office_of_row: BTreeMap<usize, String> = BTreeMap::new();
    for row in own {
        let id = office_id(
            &row.town,
            row.address.as_deref(),
            &row.region,
            row.department.as_deref(),
        );
        office_of_row.insert(row.row, id.clone());
        entries
            .offices
            .entry(id)
            .or_insert_with(|| crate::model::Office {
                name: match &row.address {
                    Some(address) => format!("{} — {address}", row.town),
                    None => row.town.clone(),
                },
                region: row.region.clone(),
                department: row.department.clone(),
                town: row.town.clone(),
                address: row.address.clone(),
                latitude: row.coordinates.map(|c| c.0),
                longitude: row.coordinates.map(|c| c.1),
            });
    }
    // Services, one per name; rows of one service in several places merge.
    for row in own {
        let service = entries
            .services
            .entry(service_id(&row.service))
            .or_insert_with(|| crate::model::Service {
                name: row.service.clone(),
                description: row.description.clone(),
                dimension: row.dimension,
                categories: Vec::new(),
                eligibility: row.eligibility.clone(),
                cost: row.cost,
                capacity: crate::model::Capacity {
                    status: row.capacity,
                    places: row.places,
                },
                languages: Vec::new(),
                service_area: crate::model::ServiceArea::default(),
                offices: Vec::new(),
                schedule: None,
                required_documents: Vec::new(),
                contact: None,
                status: crate::model::ServiceStatus::Active,
                last_update: 0,
            });
        for c in &row.categories {
            push_new(&mut service.categories, c.clone());
        }
        for l in &row.languages {
            push_new(&mut service.languages, l.clone());
        }
        match &row.department {
            Some(d) => push_new(&mut service.service_area.departments, d.clone()),
            None => push_new(&mut service.service_area.regions, row.region.clone()),
        }
        if let Some(office) = office_of_row.get(&row.row) {
            push_new(&mut service.offices, office.clone());
        }
    }
    entries
}

fn push_new(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

/// The edits that make `record` say what `entries` say (profile, then offices, then
/// services); nothing when it already does.
pub fn plan_entries(entries: &Entries, record: &OrganisationRecord) -> ImportPlan {
    use crate::document::Edit;
    let mut plan = ImportPlan::default();
    let profile = &record.profile;
    let mut patch = serde_json::Map::new();
    for (field, wanted, current) in [
        (
            "acronym",
            entries.acronym.as_ref().map(json),
            json(&profile.acronym),
        ),
        (
            "legal_status",
            entries.legal_status.as_ref().map(json),
            json(&profile.legal_status),
        ),
        (
            "description",
            entries.description.as_ref().map(json),
            json(&profile.description),
        ),
        (
            "website",
            entries.website.as_ref().map(json),
            json(&profile.website),
        ),
        (
            "parent_organisation",
            entries.parent_organisation.as_ref().map(json),
            json(&profile.parent_organisation),
        ),
        (
            "languages",
            (!entries.languages.is_empty()).then(|| json(&entries.languages)),
            json(&profile.languages),
        ),
    ] {
        if let Some(wanted) = wanted
            && wanted != current
        {
            patch.insert(field.into(), wanted);
        }
    }
    let mut contacts = profile.contacts.clone();
    for contact in &entries.contacts {
        let known = contacts.iter().any(|c| {
            (contact.email.is_some() && c.email == contact.email)
                || (contact.phone.is_some() && c.phone == contact.phone)
        });
        if !known {
            contacts.push(contact.clone());
        }
    }
    if contacts != profile.contacts {
        patch.insert("contacts".into(), json(&contacts));
    }
    if !patch.is_empty() {
        plan.changes.push(format!(
            "update the profile: {}",
            patch.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
        plan.edits.push(Edit::SetProfile { patch });
    }
    for (id, office) in &entries.offices {
        match record.offices.get(id) {
            Some(current) if current == office => plan.unchanged += 1,
            Some(_) => {
                plan.changes
                    .push(format!("update office {id} ({})", office.town));
                plan.edits.push(Edit::UpdateOffice {
                    id: id.clone(),
                    patch: object(office),
                });
            }
            None => {
                plan.changes
                    .push(format!("add office {id} ({})", office.town));
                plan.edits.push(Edit::AddOffice {
                    id: id.clone(),
                    office: Box::new(office.clone()),
                });
            }
        }
    }
    for (id, service) in &entries.services {
        let mut service = service.clone();
        match record.services.get(id) {
            Some(current) => {
                service.last_update = current.last_update;
                if !entries.services_whole {
                    service.status = current.status;
                    service.schedule = current.schedule.clone();
                    service.required_documents = current.required_documents.clone();
                    service.contact = current.contact.clone();
                }
                if *current == service {
                    plan.unchanged += 1;
                    continue;
                }
                plan.changes
                    .push(format!("update service {id} {:?}", service.name));
                plan.edits.push(Edit::UpdateService {
                    id: id.clone(),
                    patch: object(&service),
                });
            }
            None => {
                plan.changes
                    .push(format!("add service {id} {:?}", service.name));
                plan.edits.push(Edit::AddService {
                    id: id.clone(),
                    service: Box::new(service),
                });
            }
        }
    }
    plan
}

fn json(value: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

fn object(value: &impl Serialize) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}
