//! The directory's data model: an organisation's profile, its offices and its services,
//! shaped after Open Referral HSDS 3.0 (see `docs/data-model.md`).
//!
//! Rules:
//! - These are plain values; [`validate_profile`], [`validate_office`] and
//!   [`validate_service`] are pure functions that name the field at fault and the accepted
//!   values. Nothing is written to a document unless they pass.
//! - Nothing here may hold personal data of beneficiaries: the directory describes
//!   organisations and their services only.
//! - Updates are shallow merge patches ([`merge_patch`]): each key replaces a whole field;
//!   `null` clears an optional field.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::reference::taxonomy::{self, Dimension};
use crate::reference::{Lang, areas};

pub mod lifecycle;
pub mod patch;
pub mod referral;

pub use patch::{OfficePatch, Patch, ProfilePatch, ServicePatch};

/// The version of the record schema documents are written with.
pub const SCHEMA_VERSION: u32 = 1;

/// Longest name accepted (organisation, office, service).
pub const MAX_NAME_CHARS: usize = 200;
/// Longest free text accepted (descriptions, eligibility, schedule).
pub const MAX_TEXT_CHARS: usize = 4000;
/// Most entries in any list field.
pub const MAX_LIST_ITEMS: usize = 64;

/// A field that failed validation, and why: in English, and in French where it is said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The field, e.g. `cost.amount_xaf` or `service_area.regions[1]`.
    pub field: String,
    /// What is wrong, with the accepted values where they are few.
    pub message: String,
    /// The same in French.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fr: Option<String>,
}

impl ValidationError {
    /// A new error for `field`, in English (add the French with [`Self::fr`]).
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            fr: None,
        }
    }

    /// The same error, said in French too.
    #[must_use]
    pub fn fr(mut self, message: impl Into<String>) -> Self {
        self.fr = Some(message.into());
        self
    }

    /// What is wrong, in `lang` (English where no French was written).
    pub fn message_in(&self, lang: Lang) -> &str {
        match (lang, &self.fr) {
            (Lang::Fr, Some(fr)) => fr,
            _ => &self.message,
        }
    }

    /// The field and what is wrong with it, in `lang`: `field: message`, or
    /// `field : message` in French.
    pub fn said(&self, lang: Lang) -> String {
        match (lang, &self.fr) {
            (Lang::Fr, Some(fr)) => format!("{} : {fr}", self.field),
            _ => self.to_string(),
        }
    }
}

/// An organisation's legal status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalStatus {
    /// A ministry or one of its regional or departmental branches.
    Government,
    /// A national or local non-governmental organisation.
    Ngo,
    /// An international organisation.
    International,
    /// A private firm.
    Private,
    /// A community-based organisation.
    Community,
}

impl LegalStatus {
    /// Every status, for messages.
    pub const ACCEPTED: &'static str = "government, ngo, international, private, community";
}

impl std::str::FromStr for LegalStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.trim().to_ascii_lowercase()))
            .map_err(|_| format!("legal status {s:?} is not one of: {}", Self::ACCEPTED))
    }
}

/// A way to reach a person or desk at an organisation (never a beneficiary).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Name of the person or desk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Their role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone number, international form preferred (+237…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// An organisation's profile (HSDS `organization`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Official name.
    pub name: String,
    /// Acronym or short name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acronym: Option<String>,
    /// What the organisation does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Legal status (unset until the organisation says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_status: Option<LegalStatus>,
    /// For a ministry's branch: the parent organisation (its id or name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_organisation: Option<String>,
    /// Contacts of the organisation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<Contact>,
    /// Working languages (ISO 639 codes: fr, en, ful, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<String>,
    /// Web site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
}

impl Profile {
    /// A profile with only a name (every other field empty).
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            acronym: None,
            description: None,
            legal_status: None,
            parent_organisation: None,
            contacts: vec![],
            languages: vec![],
            website: None,
        }
    }
}

/// An office (HSDS `location`, physical).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Office {
    /// Name, e.g. "Antenne de Bonabéri".
    pub name: String,
    /// Region P-code.
    pub region: String,
    /// Department P-code (must lie in the region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Town or city.
    pub town: String,
    /// Street address or directions (Cameroon has no postal codes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Latitude in degrees (WGS 84).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    /// Longitude in degrees (WGS 84).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
}

/// What a service costs the beneficiary (HSDS `cost_option`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Cost {
    /// No charge.
    Free,
    /// Cost shared between the organisations (the beneficiary pays nothing extra).
    CostShared,
    /// A fee in CFA francs (XAF).
    Fee {
        /// The amount, a positive whole number of XAF.
        amount_xaf: u64,
    },
}

impl Cost {
    /// The accepted forms, for messages.
    pub const ACCEPTED: &'static str = "free, cost-shared, fee:<amount in XAF>";

    /// The kind's code: `free`, `cost_shared` or `fee`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::CostShared => "cost_shared",
            Self::Fee { .. } => "fee",
        }
    }
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Free => f.write_str("free"),
            Self::CostShared => f.write_str("cost-shared"),
            Self::Fee { amount_xaf } => write!(f, "fee:{amount_xaf}"),
        }
    }
}

impl std::str::FromStr for Cost {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim().to_ascii_lowercase();
        match text.as_str() {
            "free" | "gratuit" => Ok(Self::Free),
            "cost-shared" | "cost_shared" | "shared" => Ok(Self::CostShared),
            _ => {
                let Some(amount) = text.strip_prefix("fee:") else {
                    return Err(format!("cost {s:?} is not one of: {}", Self::ACCEPTED));
                };
                match amount.trim().parse::<u64>() {
                    Ok(0) | Err(_) => Err(format!(
                        "cost {s:?}: a fee is a positive whole number of XAF, e.g. fee:5000"
                    )),
                    Ok(amount_xaf) => Ok(Self::Fee { amount_xaf }),
                }
            }
        }
    }
}

/// Whether a service can take new people now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapacityStatus {
    /// Places are available.
    Available,
    /// New people go on a waiting list.
    Waitlist,
    /// No new people for now.
    Full,
}

impl CapacityStatus {
    /// Accepted values, for messages.
    pub const ACCEPTED: &'static str = "available, waitlist, full";
}

impl std::str::FromStr for CapacityStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.trim().to_ascii_lowercase()))
            .map_err(|_| format!("capacity {s:?} is not one of: {}", Self::ACCEPTED))
    }
}

/// A service's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    /// Available, waitlist or full.
    pub status: CapacityStatus,
    /// Places free (or people waiting) where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub places: Option<u32>,
}

/// Whether a service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ServiceStatus {
    /// Running.
    #[default]
    Active,
    /// Stopped.
    Inactive,
    /// Closed for a while.
    TemporarilyClosed,
}

impl ServiceStatus {
    /// Accepted values, for messages.
    pub const ACCEPTED: &'static str = "active, inactive, temporarily_closed";
}

impl std::str::FromStr for ServiceStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(
            s.trim().to_ascii_lowercase().replace('-', "_"),
        ))
        .map_err(|_| format!("status {s:?} is not one of: {}", Self::ACCEPTED))
    }
}

/// Where a service is offered (HSDS `service_area`), by region and department P-codes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceArea {
    /// Region P-codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// Department P-codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub departments: Vec<String>,
}

/// A service (HSDS `service`), as an organisation describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Name, e.g. "Formation en couture".
    pub name: String,
    /// What it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Economic, social or psychosocial.
    pub dimension: Dimension,
    /// Category codes from the built-in taxonomy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Who may use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eligibility: Option<String>,
    /// What it costs the beneficiary.
    pub cost: Cost,
    /// Whether it can take people now.
    pub capacity: Capacity,
    /// Languages it is offered in (ISO 639 codes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<String>,
    /// Where it is offered.
    #[serde(default)]
    pub service_area: ServiceArea,
    /// Offices of this organisation where it is delivered (HSDS `service_at_location`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offices: Vec<String>,
    /// Opening days and hours, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Documents a beneficiary must bring.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_documents: Vec<String>,
    /// Who to contact about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    /// Active, inactive or temporarily closed.
    #[serde(default)]
    pub status: ServiceStatus,
    /// When it was last changed (Unix seconds; set by the node, not the user).
    #[serde(default)]
    pub last_update: i64,
}

/// An organisation's whole document, as read back from Automerge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrganisationRecord {
    /// Document schema version.
    pub schema: u32,
    /// The organisation id (text).
    pub org_id: String,
    /// The profile.
    pub profile: Profile,
    /// Offices by id.
    #[serde(default)]
    pub offices: BTreeMap<String, Office>,
    /// Services by id.
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    /// The organisation's X25519 key, to which case files are sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<crate::identity::EncryptionPublicKey>,
    /// Referrals this organisation sent, by referral id (no personal data).
    #[serde(default)]
    pub referrals: BTreeMap<String, referral::SentReferral>,
    /// Its answers to referrals it received, by referral id.
    #[serde(default)]
    pub answers: BTreeMap<String, referral::Answer>,
    /// Its offers for other organisations' open referrals, by referral id.
    #[serde(default)]
    pub proposals: BTreeMap<String, referral::Proposal>,
    /// Draft profiles of other organisations this one published from a historical mapping
    /// (a coordinator's), by draft id: shown apart, unverified, until claimed.
    #[serde(default)]
    pub drafts: BTreeMap<String, Draft>,
    /// Drafts this organisation claimed (copied into its own document), by draft id.
    #[serde(default)]
    pub claims: BTreeMap<String, Claim>,
    /// Where each of its nodes can be reached, by the node's key id (the organisation's own
    /// key, or a device's): published by the node itself, read by members to dial it.
    #[serde(default)]
    pub addresses: BTreeMap<String, NodeAddresses>,
}

/// Where one node of an organisation can be reached, as it last published: direct
/// addresses first, then through relays (multiaddrs, as text).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddresses {
    /// The addresses, most direct first.
    pub addresses: Vec<String>,
    /// When it published them (Unix time).
    pub updated: i64,
}

/// Most addresses one node publishes.
pub const MAX_NODE_ADDRESSES: usize = 8;
/// Longest address published (a relayed address names two peer ids).
pub const MAX_ADDRESS_CHARS: usize = 300;
/// Most nodes of one organisation with published addresses (its own and its devices').
pub const MAX_ADDRESSED_NODES: usize = 32;

/// Checks a node's published addresses: a key id, at most [`MAX_NODE_ADDRESSES`] of at most
/// [`MAX_ADDRESS_CHARS`] characters, each starting with `/`.
pub fn validate_addresses(key: &str, entry: &NodeAddresses) -> Result<(), ValidationError> {
    if key.parse::<crate::identity::KeyId>().is_err() {
        return Err(
            ValidationError::new("addresses", format!("{key:?} is not a node's key id"))
                .fr(format!("{key:?} n'est pas l'identifiant de clé d'un nœud")),
        );
    }
    if entry.addresses.len() > MAX_NODE_ADDRESSES {
        return Err(ValidationError::new(
            "addresses",
            format!(
                "{} addresses for one node; at most {MAX_NODE_ADDRESSES}",
                entry.addresses.len()
            ),
        )
        .fr(format!(
            "{} adresses pour un nœud ; au plus {MAX_NODE_ADDRESSES}",
            entry.addresses.len()
        )));
    }
    if let Some(bad) = entry
        .addresses
        .iter()
        .find(|a| a.len() > MAX_ADDRESS_CHARS || !a.starts_with('/'))
    {
        return Err(ValidationError::new(
            "addresses",
            format!(
                "{:?} is not an address (a multiaddr such as /ip4/192.0.2.10/tcp/4690, at most {MAX_ADDRESS_CHARS} characters)",
                bad.chars().take(80).collect::<String>()
            ),
        )
        .fr(format!(
            "{:?} n'est pas une adresse (une multiaddr comme /ip4/192.0.2.10/tcp/4690, au plus {MAX_ADDRESS_CHARS} caractères)",
            bad.chars().take(80).collect::<String>()
        )));
    }
    Ok(())
}

impl OrganisationRecord {
    /// The record without its referral parts (referrals sent, answers, proposals): what
    /// the directory's exports and reports read.
    pub fn directory_part(&self) -> Self {
        Self {
            schema: self.schema,
            org_id: self.org_id.clone(),
            profile: self.profile.clone(),
            offices: self.offices.clone(),
            services: self.services.clone(),
            encryption_key: self.encryption_key,
            referrals: BTreeMap::new(),
            answers: BTreeMap::new(),
            proposals: BTreeMap::new(),
            drafts: self.drafts.clone(),
            claims: self.claims.clone(),
            addresses: BTreeMap::new(),
        }
    }
}

/// Most offices or services a draft may hold.
pub const MAX_DRAFT_ENTRIES: usize = 500;

/// What a source (a mapping's rows, an HSDS organization) says one organisation is: the
/// parts of its profile it gives, and its offices and services by id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entries {
    /// Acronym.
    pub acronym: Option<String>,
    /// Legal status.
    pub legal_status: Option<LegalStatus>,
    /// Description of the organisation.
    pub description: Option<String>,
    /// Website.
    pub website: Option<String>,
    /// Working languages of the organisation.
    pub languages: Vec<String>,
    /// The organisation it belongs to (a ministry's regional delegation).
    pub parent_organisation: Option<String>,
    /// Contacts (added to the profile's when neither their e-mail nor phone is known).
    pub contacts: Vec<Contact>,
    /// Offices by id.
    pub offices: BTreeMap<String, Office>,
    /// Services by id.
    pub services: BTreeMap<String, Service>,
    /// The source describes each service whole (status, schedule, required documents,
    /// contact); a mapping spreadsheet does not, and those stay as the document has them.
    pub services_whole: bool,
}

/// Another organisation's entries as a historical mapping gives them, published by a
/// coordinator in its own document until that organisation claims them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    /// The organisation's name as the mapping gives it.
    pub name: String,
    /// Its profile parts, offices and services.
    pub entries: Entries,
    /// The file it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// When it was published, in seconds since the Unix epoch.
    pub published: i64,
}

/// A draft an organisation claimed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The organisation that published the draft (id).
    pub publisher: String,
    /// When it was claimed.
    pub at: i64,
}

/// Checks a draft: a name, bounded size, and offices and services that would pass as the
/// organisation's own.
pub fn validate_draft(draft: &mut Draft) -> Result<(), ValidationError> {
    check_name("name", &draft.name)?;
    draft.name = draft.name.trim().to_owned();
    if draft.entries.offices.len() > MAX_DRAFT_ENTRIES
        || draft.entries.services.len() > MAX_DRAFT_ENTRIES
    {
        return Err(ValidationError::new(
            "draft",
            format!(
                "a draft holds at most {MAX_DRAFT_ENTRIES} offices and {MAX_DRAFT_ENTRIES} services"
            ),
        )
        .fr(format!(
            "un brouillon contient au plus {MAX_DRAFT_ENTRIES} bureaux et {MAX_DRAFT_ENTRIES} services"
        )));
    }
    for office in draft.entries.offices.values_mut() {
        validate_office(office)?;
    }
    let offices = draft.entries.offices.clone();
    for service in draft.entries.services.values_mut() {
        validate_service(service, &offices)?;
    }
    Ok(())
}

impl OrganisationRecord {
    /// A record with a profile and nothing else (for tests, benchmarks and tools that build
    /// records outside a document).
    pub fn new(org_id: impl Into<String>, profile: Profile) -> Self {
        Self {
            schema: SCHEMA_VERSION,
            org_id: org_id.into(),
            profile,
            offices: BTreeMap::new(),
            services: BTreeMap::new(),
            encryption_key: None,
            referrals: BTreeMap::new(),
            answers: BTreeMap::new(),
            proposals: BTreeMap::new(),
            drafts: BTreeMap::new(),
            claims: BTreeMap::new(),
            addresses: BTreeMap::new(),
        }
    }
}

/// Applies a shallow merge patch: each key of `patch` replaces that field of `current`;
/// `null` removes it. Unknown or ill-typed fields are reported by the caller's decode.
pub fn merge_patch(
    current: &serde_json::Value,
    patch: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    let mut merged = current.as_object().cloned().unwrap_or_default();
    for (key, value) in patch {
        if value.is_null() {
            merged.remove(key);
        } else {
            merged.insert(key.clone(), value.clone());
        }
    }
    serde_json::Value::Object(merged)
}

/// Decodes a JSON value into `T`, turning serde's message into a [`ValidationError`] that
/// names the field at fault (its path, e.g. `capacity.places`), the value's problem and
/// what is accepted.
pub fn decode_json<T: serde::de::DeserializeOwned>(
    what: &str,
    value: serde_json::Value,
) -> Result<T, ValidationError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let field = if path == "." || path.is_empty() {
            what.to_owned()
        } else {
            path
        };
        let fr = serde_in_french(&inner);
        let error = ValidationError::new(field, inner);
        match fr {
            Some(fr) => error.fr(fr),
            None => error,
        }
    })
}

/// serde's most frequent messages, in French: a field or value unknown (with what is
/// accepted), a field missing, a value of the wrong type.
fn serde_in_french(message: &str) -> Option<String> {
    let rest = |prefix: &str| message.strip_prefix(prefix);
    if let Some(rest) = rest("unknown field ") {
        let (name, accepted) = rest.split_once(", expected ").unwrap_or((rest, ""));
        let accepted = accepted.strip_prefix("one of ").unwrap_or(accepted);
        return Some(if accepted.is_empty() {
            format!("champ {name} inconnu")
        } else {
            format!("champ {name} inconnu ; champs acceptés : {accepted}")
        });
    }
    if let Some(rest) = rest("unknown variant ") {
        let (value, accepted) = rest.split_once(", expected ").unwrap_or((rest, ""));
        let accepted = accepted.strip_prefix("one of ").unwrap_or(accepted);
        return Some(format!(
            "valeur {value} inconnue ; valeurs acceptées : {accepted}"
        ));
    }
    if let Some(name) = rest("missing field ") {
        return Some(format!("champ {name} manquant"));
    }
    if let Some(rest) = rest("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ")?;
        return Some(format!("type invalide : {found}, attendu : {expected}"));
    }
    None
}

fn check_name(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty").fr("ne doit pas être vide"));
    }
    check_line(field, value, MAX_NAME_CHARS)
}

fn check_len(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.chars().count() > max {
        return Err(
            ValidationError::new(field, format!("is longer than {max} characters"))
                .fr(format!("dépasse {max} caractères")),
        );
    }
    Ok(())
}

impl From<crate::text::TextError> for ValidationError {
    fn from(e: crate::text::TextError) -> Self {
        ValidationError::new(
            e.field.clone(),
            format!(
                "holds {} (U+{:04X}) at character {}; remove it (text may not hold control, bidirectional-override or invisible characters)",
                e.what, e.code, e.at
            ),
        )
        .fr(format!(
            "contient {} (U+{:04X}) au caractère {} ; retirez-le (un texte ne peut contenir ni caractère de contrôle, ni forçage de sens d'écriture, ni caractère invisible)",
            e.what, e.code, e.at
        ))
    }
}

/// A one-line text: no line breaks, control, override or invisible characters.
fn check_line(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    crate::text::check(field, value, false)?;
    check_len(field, value, max)
}

fn check_opt_text(field: &str, value: &Option<String>) -> Result<(), ValidationError> {
    match value {
        Some(text) => {
            crate::text::check(field, text, true)?;
            check_len(field, text, MAX_TEXT_CHARS)
        }
        None => Ok(()),
    }
}

fn check_list_len<T>(field: &str, list: &[T]) -> Result<(), ValidationError> {
    if list.len() > MAX_LIST_ITEMS {
        return Err(
            ValidationError::new(field, format!("has more than {MAX_LIST_ITEMS} entries"))
                .fr(format!("a plus de {MAX_LIST_ITEMS} entrées")),
        );
    }
    Ok(())
}

fn check_languages(field: &str, languages: &[String]) -> Result<(), ValidationError> {
    check_list_len(field, languages)?;
    for (i, lang) in languages.iter().enumerate() {
        let ok = (2..=3).contains(&lang.len()) && lang.bytes().all(|b| b.is_ascii_lowercase());
        if !ok {
            return Err(ValidationError::new(
                format!("{field}[{i}]"),
                format!(
                    "{lang:?} is not an ISO 639 language code (2 or 3 lower-case letters, e.g. fr, en, ful)"
                ),
            )
            .fr(format!(
                "{lang:?} n'est pas un code de langue ISO 639 (2 ou 3 lettres minuscules, par ex. fr, en, ful)"
            )));
        }
    }
    Ok(())
}

fn check_contact(field: &str, contact: &Contact) -> Result<(), ValidationError> {
    for (name, value) in [
        ("name", &contact.name),
        ("title", &contact.title),
        ("email", &contact.email),
        ("phone", &contact.phone),
    ] {
        if let Some(value) = value {
            check_line(&format!("{field}.{name}"), value, MAX_NAME_CHARS)?;
        }
    }
    if let Some(email) = &contact.email
        && !(email.contains('@') && !email.starts_with('@') && !email.ends_with('@'))
    {
        return Err(ValidationError::new(
            format!("{field}.email"),
            format!("{email:?} is not an e-mail address"),
        )
        .fr(format!("{email:?} n'est pas une adresse électronique")));
    }
    if let Some(phone) = &contact.phone {
        let digits = phone.chars().filter(char::is_ascii_digit).count();
        let allowed = phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c));
        if !allowed || digits < 6 {
            return Err(ValidationError::new(
                format!("{field}.phone"),
                format!("{phone:?} is not a phone number (digits, spaces, + - ( ) .)"),
            )
            .fr(format!(
                "{phone:?} n'est pas un numéro de téléphone (chiffres, espaces, + - ( ) .)"
            )));
        }
    }
    Ok(())
}

/// Checks a region P-code.
pub fn check_region(field: &str, code: &str) -> Result<&'static areas::Region, ValidationError> {
    areas::region(code).ok_or_else(|| {
        ValidationError::new(
            field,
            format!(
                "unknown region code {code:?}; valid codes: {}",
                areas::region_list()
            ),
        )
        .fr(format!(
            "code de région {code:?} inconnu ; codes valides : {}",
            areas::region_list()
        ))
    })
}

/// Checks a department P-code (and, given a region, that it lies there).
pub fn check_department(
    field: &str,
    code: &str,
    region: Option<&str>,
) -> Result<&'static areas::Department, ValidationError> {
    let department = areas::department(code).ok_or_else(|| {
        ValidationError::new(
            field,
            format!(
                "unknown department code {code:?}; valid codes: {}",
                areas::department_list(region)
            ),
        )
        .fr(format!(
            "code de département {code:?} inconnu ; codes valides : {}",
            areas::department_list(region)
        ))
    })?;
    if let Some(region) = region
        && department.region != region
    {
        return Err(ValidationError::new(
            field,
            format!(
                "department {code:?} ({}) is not in region {region}; its departments are: {}",
                department.name_fr,
                areas::department_list(Some(region))
            ),
        )
        .fr(format!(
            "le département {code:?} ({}) n'est pas dans la région {region} ; ses départements sont : {}",
            department.name_fr,
            areas::department_list(Some(region))
        )));
    }
    Ok(department)
}

/// Checks a category code.
pub fn check_category(field: &str, code: &str) -> Result<(), ValidationError> {
    if taxonomy::category(code).is_none() {
        return Err(ValidationError::new(
            field,
            format!(
                "unknown category {code:?}; valid categories: {}",
                taxonomy::category_codes()
            ),
        )
        .fr(format!(
            "catégorie {code:?} inconnue ; catégories valides : {}",
            taxonomy::category_codes()
        )));
    }
    Ok(())
}

/// Validates a profile. Codes are normalised (upper-case P-codes) in place.
pub fn validate_profile(profile: &mut Profile) -> Result<(), ValidationError> {
    check_name("name", &profile.name)?;
    profile.name = profile.name.trim().to_owned();
    if let Some(acronym) = &profile.acronym {
        check_line("acronym", acronym, 32)?;
    }
    check_opt_text("description", &profile.description)?;
    if let Some(parent) = &profile.parent_organisation {
        check_name("parent_organisation", parent)?;
    }
    check_list_len("contacts", &profile.contacts)?;
    for (i, contact) in profile.contacts.iter().enumerate() {
        check_contact(&format!("contacts[{i}]"), contact)?;
    }
    check_languages("languages", &profile.languages)?;
    if let Some(site) = &profile.website {
        check_line("website", site, MAX_NAME_CHARS)?;
    }
    if let Some(site) = &profile.website
        && !(site.starts_with("https://") || site.starts_with("http://"))
    {
        return Err(ValidationError::new(
            "website",
            format!("{site:?} must start with https:// or http://"),
        )
        .fr(format!("{site:?} doit commencer par https:// ou http://")));
    }
    Ok(())
}

/// Validates an office. Codes are normalised in place.
pub fn validate_office(office: &mut Office) -> Result<(), ValidationError> {
    check_name("name", &office.name)?;
    let region = check_region("region", &office.region)?;
    office.region = region.pcode.to_owned();
    if let Some(department) = &office.department {
        let department = check_department("department", department, Some(region.pcode))?;
        office.department = Some(department.pcode.to_owned());
    }
    check_name("town", &office.town)?;
    check_opt_text("address", &office.address)?;
    match (office.latitude, office.longitude) {
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat) {
                return Err(ValidationError::new(
                    "latitude",
                    format!("{lat} is outside -90 to 90"),
                )
                .fr(format!("{lat} est hors de -90 à 90")));
            }
            if !(-180.0..=180.0).contains(&lon) {
                return Err(ValidationError::new(
                    "longitude",
                    format!("{lon} is outside -180 to 180"),
                )
                .fr(format!("{lon} est hors de -180 à 180")));
            }
        }
        (None, None) => {}
        (Some(_), None) => {
            return Err(
                ValidationError::new("longitude", "is required when latitude is given")
                    .fr("est requise quand la latitude est donnée"),
            );
        }
        (None, Some(_)) => {
            return Err(
                ValidationError::new("latitude", "is required when longitude is given")
                    .fr("est requise quand la longitude est donnée"),
            );
        }
    }
    Ok(())
}

/// Validates a service against the organisation's offices. Codes are normalised in place.
pub fn validate_service(
    service: &mut Service,
    offices: &BTreeMap<String, Office>,
) -> Result<(), ValidationError> {
    check_name("name", &service.name)?;
    check_opt_text("description", &service.description)?;
    check_opt_text("eligibility", &service.eligibility)?;
    check_opt_text("schedule", &service.schedule)?;
    check_list_len("categories", &service.categories)?;
    for (i, code) in service.categories.iter().enumerate() {
        check_category(&format!("categories[{i}]"), code)?;
        if let Some(category) = taxonomy::category(code)
            && category.dimension != service.dimension
        {
            let same: Vec<&str> = taxonomy::CATEGORIES
                .iter()
                .filter(|c| c.dimension == service.dimension)
                .map(|c| c.code)
                .collect();
            return Err(ValidationError::new(
                format!("categories[{i}]"),
                format!(
                    "category {code:?} belongs to the {} dimension, not {}; categories of {}: {}",
                    category.dimension,
                    service.dimension,
                    service.dimension,
                    same.join(", ")
                ),
            )
            .fr(format!(
                "la catégorie {code:?} relève de la dimension {}, pas {} ; catégories de {} : {}",
                category.dimension,
                service.dimension,
                service.dimension,
                same.join(", ")
            )));
        }
    }
    if let Cost::Fee { amount_xaf: 0 } = service.cost {
        return Err(ValidationError::new(
            "cost.amount_xaf",
            "a fee must be a positive whole number of XAF (use `free` for no charge)",
        )
        .fr("un tarif est un nombre entier positif de FCFA (`free` ou `gratuit` pour un service sans frais)"));
    }
    check_languages("languages", &service.languages)?;
    check_list_len("service_area.regions", &service.service_area.regions)?;
    for (i, code) in service.service_area.regions.iter_mut().enumerate() {
        *code = check_region(&format!("service_area.regions[{i}]"), code)?
            .pcode
            .to_owned();
    }
    check_list_len(
        "service_area.departments",
        &service.service_area.departments,
    )?;
    for (i, code) in service.service_area.departments.iter_mut().enumerate() {
        *code = check_department(&format!("service_area.departments[{i}]"), code, None)?
            .pcode
            .to_owned();
    }
    check_list_len("offices", &service.offices)?;
    for (i, office) in service.offices.iter().enumerate() {
        if !offices.contains_key(office) {
            let known: Vec<&str> = offices.keys().map(String::as_str).collect();
            return Err(ValidationError::new(
                format!("offices[{i}]"),
                format!(
                    "no office {office:?} in this organisation; its offices are: {}",
                    if known.is_empty() {
                        "(none yet: add one with `passerelle office add`)".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            )
            .fr(format!(
                "pas de bureau {office:?} dans cette organisation ; ses bureaux sont : {}",
                if known.is_empty() {
                    "(aucun encore : ajoutez-en un avec `passerelle office add`)".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    check_list_len("required_documents", &service.required_documents)?;
    for (i, doc) in service.required_documents.iter().enumerate() {
        check_name(&format!("required_documents[{i}]"), doc)?;
    }
    if let Some(contact) = &service.contact {
        check_contact("contact", contact)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_said_in_french_and_in_english() {
        let mut office = Office {
            name: "Antenne".into(),
            region: "CM099".into(),
            department: None,
            town: "Douala".into(),
            address: None,
            latitude: None,
            longitude: None,
        };
        let error = validate_office(&mut office).expect_err("unknown region");
        assert!(
            error
                .said(Lang::Fr)
                .starts_with("region : code de région \"CM099\" inconnu ; codes valides : CM001"),
            "{}",
            error.said(Lang::Fr)
        );
        assert!(
            error
                .said(Lang::En)
                .starts_with("region: unknown region code \"CM099\"; valid codes: CM001")
        );
        // serde's own words, in French.
        let error = decode_json::<Contact>("contact", serde_json::json!({"colour": "red"}))
            .expect_err("unknown field");
        assert_eq!(
            error.message_in(Lang::Fr),
            "champ `colour` inconnu ; champs acceptés : `name`, `title`, `email`, `phone`"
        );
        let error = decode_json::<Cost>("cost", serde_json::json!({"kind": "cher"}))
            .expect_err("unknown variant");
        assert!(
            error
                .message_in(Lang::Fr)
                .starts_with("valeur `cher` inconnue ; valeurs acceptées : `free`"),
            "{}",
            error.message_in(Lang::Fr)
        );
    }

    pub(crate) fn sample_service() -> Service {
        Service {
            name: "Formation en couture".into(),
            description: Some("Six mois de formation pratique".into()),
            dimension: Dimension::Economic,
            categories: vec!["vocational_training".into()],
            eligibility: Some("Returnees aged 18-35".into()),
            cost: Cost::Free,
            capacity: Capacity {
                status: CapacityStatus::Available,
                places: Some(12),
            },
            languages: vec!["fr".into(), "en".into()],
            service_area: ServiceArea {
                regions: vec!["cm005".into()],
                departments: vec!["CM005004".into()],
            },
            offices: vec![],
            schedule: Some("Lun-Ven 8h-16h".into()),
            required_documents: vec!["Carte d'identité".into()],
            contact: None,
            status: ServiceStatus::Active,
            last_update: 0,
        }
    }

    #[test]
    fn valid_service_is_normalised() {
        let mut service = sample_service();
        validate_service(&mut service, &BTreeMap::new()).unwrap();
        assert_eq!(service.service_area.regions, vec!["CM005".to_owned()]);
    }

    #[test]
    fn bad_fields_are_named_with_accepted_values() {
        let mut service = sample_service();
        service.service_area.regions = vec!["CM099".into()];
        let err = validate_service(&mut service, &BTreeMap::new()).unwrap_err();
        assert_eq!(err.field, "service_area.regions[0]");
        assert!(err.message.contains("CM005 Littoral"), "{err}");

        let mut service = sample_service();
        service.name = "  ".into();
        assert_eq!(
            validate_service(&mut service, &BTreeMap::new())
                .unwrap_err()
                .field,
            "name"
        );

        let mut service = sample_service();
        service.categories = vec!["astrology".into()];
        let err = validate_service(&mut service, &BTreeMap::new()).unwrap_err();
        assert!(err.message.contains("vocational_training"));

        let mut service = sample_service();
        service.offices = vec!["off-missing".into()];
        let err = validate_service(&mut service, &BTreeMap::new()).unwrap_err();
        assert_eq!(err.field, "offices[0]");
    }

    #[test]
    fn cost_parsing() {
        assert_eq!("free".parse::<Cost>().unwrap(), Cost::Free);
        assert_eq!(
            "fee:5000".parse::<Cost>().unwrap(),
            Cost::Fee { amount_xaf: 5000 }
        );
        assert!("fee:-5".parse::<Cost>().unwrap_err().contains("positive"));
        assert!("fee:0".parse::<Cost>().is_err());
        assert!(
            "cheap"
                .parse::<Cost>()
                .unwrap_err()
                .contains("free, cost-shared")
        );
    }

    #[test]
    fn office_department_must_lie_in_region() {
        let mut office = Office {
            name: "Antenne".into(),
            region: "CM005".into(),
            department: Some("CM002007".into()),
            town: "Douala".into(),
            address: None,
            latitude: None,
            longitude: None,
        };
        let err = validate_office(&mut office).unwrap_err();
        assert_eq!(err.field, "department");
        assert!(err.message.contains("CM005004 Wouri"));
    }

    #[test]
    fn merge_patch_replaces_and_clears() {
        let current = serde_json::json!({"name": "A", "acronym": "X", "legal_status": "ngo"});
        let patch = serde_json::json!({"name": "B", "acronym": null});
        let merged = merge_patch(&current, patch.as_object().unwrap());
        assert_eq!(
            merged,
            serde_json::json!({"name": "B", "legal_status": "ngo"})
        );
    }

    #[test]
    fn unknown_field_is_named() {
        let err = decode_json::<Profile>(
            "profile",
            serde_json::json!({"name": "A", "legal_status": "ngo", "colour": "red"}),
        )
        .unwrap_err();
        assert_eq!(err.field, "colour");
        let err = decode_json::<Profile>("profile", serde_json::json!({"name": 5})).unwrap_err();
        assert_eq!(err.field, "name");
        assert!(err.message.contains("expected a string"), "{}", err.message);
        let err = decode_json::<Profile>(
            "profile",
            serde_json::json!({"name": "A", "legal_status": "club"}),
        )
        .unwrap_err();
        assert!(err.message.contains("government"), "{err}");
    }
}
