//! The case file and its consent record: what identifies the returnee, which never enters
//! a replicated document.
//!
//! Rules:
//! - A case file goes only with a consent record: consent given (method, date, expiry,
//!   scope: which organisation, which service, which fields) or an override with its
//!   reason. Fields outside the consent's scope are removed before sealing
//!   ([`CaseFile::minimise`]).
//! - The payload is sealed to the receiving organisation's X25519 key (published, signed,
//!   in its document): an ephemeral X25519 key, HKDF-SHA256, ChaCha20-Poly1305, with the
//!   referral id and both organisations as associated data so it cannot be replayed under
//!   another referral.
//! - The board carries a salted SHA-256 commitment to the payload ([`Payload::commitment`]);
//!   the 32-byte random salt travels only inside the sealed payload, so the commitment
//!   reveals nothing, even of a guessable name and phone number.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::identity::{EncryptionPublicKey, Identity, KeyId, OrgId};
use crate::model::ValidationError;

/// The fields of a case file, as consent scopes name them.
pub const FIELDS: [&str; 10] = [
    "name",
    "sex",
    "birth_year",
    "age",
    "phone",
    "languages",
    "location",
    "needs",
    "vulnerabilities",
    "notes",
];

/// Largest sealed case file (payload and notes included).
pub const MAX_SEALED_BYTES: usize = 64 * 1024;

/// Who the person is and what they need. Never replicated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// Full name.
    #[serde(default)]
    pub name: String,
    /// `female`, `male` or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<String>,
    /// Year of birth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_year: Option<u16>,
    /// Age in years, when the year of birth is not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<u8>,
    /// Phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Languages spoken (ISO 639 codes or names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<String>,
    /// Where to find the person (town, quarter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Needs, in words or category codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// Vulnerabilities (e.g. `disability`, `single_parent`, `unaccompanied_minor`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vulnerabilities: Vec<String>,
    /// Free notes for the receiving caseworker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.chars().count() > max {
        return Err(
            ValidationError::new(field, format!("at most {max} characters"))
                .fr(format!("au plus {max} caractères")),
        );
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ValidationError::new(field, "contains control characters")
            .fr("contient des caractères de contrôle"));
    }
    Ok(())
}

fn check_list(field: &str, values: &[String]) -> Result<(), ValidationError> {
    if values.len() > 32 {
        return Err(ValidationError::new(field, "at most 32 entries").fr("au plus 32 entrées"));
    }
    values.iter().try_for_each(|v| check_text(field, v, 200))
}

impl CaseFile {
    /// Checks a case file as entered: a name, a plausible age, short fields.
    pub fn validate(&self, this_year: i32) -> Result<(), ValidationError> {
        if self.name.trim().is_empty() {
            return Err(
                ValidationError::new("name", "the person's name is required")
                    .fr("le nom de la personne est requis"),
            );
        }
        check_text("name", &self.name, 200)?;
        if let Some(sex) = &self.sex
            && !matches!(sex.as_str(), "female" | "male" | "other")
        {
            return Err(ValidationError::new(
                "sex",
                format!("{sex:?} is not one of: female, male, other"),
            )
            .fr(format!("{sex:?} n'est pas l'une de : female, male, other")));
        }
        if let Some(year) = self.birth_year
            && !(1900..=this_year).contains(&i32::from(year))
        {
            return Err(ValidationError::new(
                "birth_year",
                format!("{year} is not a year between 1900 and {this_year}"),
            )
            .fr(format!(
                "{year} n'est pas une année entre 1900 et {this_year}"
            )));
        }
        if self.age.is_some_and(|a| a > 120) {
            return Err(ValidationError::new("age", "at most 120").fr("au plus 120"));
        }
        if let Some(phone) = &self.phone
            && (phone.len() > 32
                || !phone
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')')))
        {
            return Err(ValidationError::new(
                "phone",
                format!("{phone:?} is not a phone number (digits, +, spaces, at most 32)"),
            )
            .fr(format!(
                "{phone:?} n'est pas un numéro de téléphone (chiffres, +, espaces, au plus 32)"
            )));
        }
        check_list("languages", &self.languages)?;
        check_text("location", self.location.as_deref().unwrap_or(""), 200)?;
        check_list("needs", &self.needs)?;
        check_list("vulnerabilities", &self.vulnerabilities)?;
        check_text("notes", self.notes.as_deref().unwrap_or(""), 4000)
    }

    /// The case file with only the fields in `fields` (the consent's scope).
    pub fn minimise(&self, fields: &[String]) -> CaseFile {
        let keep = |name: &str| fields.iter().any(|f| f == name);
        CaseFile {
            name: if keep("name") {
                self.name.clone()
            } else {
                String::new()
            },
            sex: self.sex.clone().filter(|_| keep("sex")),
            birth_year: self.birth_year.filter(|_| keep("birth_year")),
            age: self.age.filter(|_| keep("age")),
            phone: self.phone.clone().filter(|_| keep("phone")),
            languages: if keep("languages") {
                self.languages.clone()
            } else {
                Vec::new()
            },
            location: self.location.clone().filter(|_| keep("location")),
            needs: if keep("needs") {
                self.needs.clone()
            } else {
                Vec::new()
            },
            vulnerabilities: if keep("vulnerabilities") {
                self.vulnerabilities.clone()
            } else {
                Vec::new()
            },
            notes: self.notes.clone().filter(|_| keep("notes")),
        }
    }
}

/// How consent was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentMethod {
    /// Said aloud to the caseworker.
    Verbal,
    /// A signed form.
    Written,
    /// Through a digital form or message.
    Digital,
    /// By a parent or guardian (for a minor or a person who cannot consent).
    Guardian,
}

impl std::str::FromStr for ConsentMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "verbal" => Ok(Self::Verbal),
            "written" => Ok(Self::Written),
            "digital" => Ok(Self::Digital),
            "guardian" => Ok(Self::Guardian),
            other => Err(format!(
                "consent method {other:?} is not one of: verbal, written, digital, guardian"
            )),
        }
    }
}

/// The person's consent to share their case file for this referral.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// How it was given.
    pub method: ConsentMethod,
    /// When (Unix seconds).
    pub given_at: i64,
    /// Until when it holds (Unix seconds), if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// The organisation it allows sharing with; `None`: whichever member an open referral
    /// is assigned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<OrgId>,
    /// The service it allows sharing for; `None`: the referral's service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The case-file fields it allows sharing ([`FIELDS`]).
    pub data: Vec<String>,
}

/// Consent, or why the case file is shared without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConsentRecord {
    /// The person consented.
    Given(Consent),
    /// Shared without consent (e.g. a child at risk, a medical emergency), with the reason;
    /// logged on both nodes.
    Override {
        /// Why.
        reason: String,
        /// When (Unix seconds).
        at: i64,
    },
}

impl ConsentRecord {
    /// Checks that it allows sending a case file to `receiver` for `service` at `now`
    /// (`None`: not known yet, as for an open referral before it is assigned).
    pub fn allows(
        &self,
        receiver: Option<&OrgId>,
        service: Option<&str>,
        now: i64,
    ) -> Result<(), ValidationError> {
        match self {
            Self::Override { reason, .. } => {
                if reason.trim().chars().count() < 10 {
                    return Err(ValidationError::new(
                        "consent_override",
                        "an override needs its reason in words (at least 10 characters)",
                    )
                    .fr("passer outre le consentement demande sa raison en toutes lettres (au moins 10 caractères)"));
                }
                check_text("consent_override", reason, 1000)
            }
            Self::Given(consent) => {
                if consent.given_at > now + 24 * 3600 {
                    return Err(ValidationError::new(
                        "consent_date",
                        "consent cannot be dated in the future",
                    )
                    .fr("le consentement ne peut pas être daté dans le futur"));
                }
                if consent.expires_at.is_some_and(|e| e <= now) {
                    return Err(
                        ValidationError::new("consent_expiry", "the consent has expired")
                            .fr("le consentement a expiré"),
                    );
                }
                if let (Some(named), Some(receiver)) = (&consent.organisation, receiver)
                    && named != receiver
                {
                    return Err(ValidationError::new(
                        "consent_organisation",
                        "the consent names another organisation than the receiver",
                    )
                    .fr("le consentement nomme une autre organisation que la destinataire"));
                }
                if let (Some(named), Some(service)) = (consent.service.as_deref(), service)
                    && named != service
                {
                    return Err(ValidationError::new(
                        "consent_service",
                        "the consent names another service than the referral's",
                    )
                    .fr("le consentement nomme un autre service que celui de la référence"));
                }
                if consent.data.is_empty() {
                    return Err(ValidationError::new(
                        "consent_data",
                        format!("name the fields consented to, among: {}", FIELDS.join(", ")),
                    )
                    .fr(format!(
                        "nommez les champs consentis, parmi : {}",
                        FIELDS.join(", ")
                    )));
                }
                if let Some(bad) = consent.data.iter().find(|f| !FIELDS.contains(&f.as_str())) {
                    return Err(ValidationError::new(
                        "consent_data",
                        format!("{bad:?} is not one of: {}", FIELDS.join(", ")),
                    )
                    .fr(format!("{bad:?} n'est pas l'un de : {}", FIELDS.join(", "))));
                }
                Ok(())
            }
        }
    }

    /// The fields it allows sharing (every field under an override).
    pub fn fields(&self) -> Vec<String> {
        match self {
            Self::Given(consent) => consent.data.clone(),
            Self::Override { .. } => FIELDS.iter().map(|f| (*f).to_owned()).collect(),
        }
    }
}

/// What a case file holds in secret: the case file, its consent, and the commitment's
/// salt. Both nodes keep it encrypted at rest ([`super::vault`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseContent {
    /// Random salt of the commitment (hex).
    pub salt: String,
    /// The case file (minimised to the consent's scope).
    pub case_file: CaseFile,
    /// The consent record.
    pub consent: ConsentRecord,
}

impl CaseContent {
    /// The salted commitment the board entry of `referral` by `sender` carries (hex
    /// SHA-256). The receiver is not part of it: an open referral commits before it is
    /// assigned.
    pub fn commitment(&self, referral: &str, sender: &OrgId) -> String {
        let mut hash = Sha256::new();
        hash.update(b"passerelle/case-file/1\0");
        hash.update(self.salt.as_bytes());
        hash.update(referral.as_bytes());
        hash.update(sender.as_bytes());
        // Serialising our own types to JSON cannot fail.
        hash.update(serde_json::to_vec(&self.case_file).unwrap_or_default());
        hash.update(serde_json::to_vec(&self.consent).unwrap_or_default());
        data_encoding::HEXLOWER.encode(&hash.finalize())
    }
}

/// What is sealed to the receiver: the case content and what binds it to one referral.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// The referral id.
    pub referral: String,
    /// The sending organisation.
    pub sender: OrgId,
    /// The receiving organisation.
    pub receiver: OrgId,
    /// When it was sealed.
    pub sent_at: i64,
    /// The case file, consent and salt.
    pub content: CaseContent,
}

impl Payload {
    /// The commitment to its content.
    pub fn commitment(&self) -> String {
        self.content.commitment(&self.referral, &self.sender)
    }
}

/// A fresh random salt (hex).
pub fn fresh_salt() -> Result<String, getrandom::Error> {
    let mut salt = [0u8; 32];
    getrandom::fill(&mut salt)?;
    Ok(data_encoding::HEXLOWER.encode(&salt))
}

/// A payload sealed to one organisation's X25519 key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The sender's ephemeral X25519 public key.
    #[serde(with = "serde_bytes")]
    pub ephemeral: Vec<u8>,
    /// ChaCha20-Poly1305 nonce.
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    /// The encrypted payload (JSON).
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

/// Why a sealed payload cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key agreement gave nothing usable (a low-order key).
    #[error("the encryption key is not usable")]
    BadKey,
    /// Tampered, or not sealed to this node.
    #[error("the case file does not decrypt (tampered, or not sealed to this organisation)")]
    Decrypt,
    /// It decrypts but is not a payload.
    #[error("the case file is malformed: {0}")]
    Malformed(String),
    /// No randomness.
    #[error("no randomness: {0}")]
    Random(String),
}

fn associated_data(referral: &str, sender: &OrgId, receiver: &OrgId) -> Vec<u8> {
    let mut aad = b"passerelle/case-file/1\0".to_vec();
    aad.extend_from_slice(referral.as_bytes());
    aad.extend_from_slice(sender.as_bytes());
    aad.extend_from_slice(receiver.as_bytes());
    aad
}

/// What a case file's sealing key is derived for (HKDF info).
const CASE_FILE_INFO: &[u8] = b"passerelle case file v1";

fn from_sealing(e: crate::sealing::SealingError) -> SealError {
    use crate::sealing::SealingError as E;
    match e {
        E::BadKey => SealError::BadKey,
        E::Decrypt => SealError::Decrypt,
        E::Random(why) => SealError::Random(why),
    }
}

/// What a case file handed on to one of the receiving organisation's offices (a device
/// node granted case files) is sealed for: the same associated data, the office's key
/// after it, and its own HKDF info — a sealing for the organisation never opens as one
/// for an office, nor one office's for another's.
const OFFICE_INFO: &[u8] = b"passerelle case file for an office v1";

fn office_associated_data(payload_aad: Vec<u8>, office: &KeyId) -> Vec<u8> {
    let mut aad = payload_aad;
    aad.extend_from_slice(b"\0office\0");
    aad.extend_from_slice(office.as_bytes());
    aad
}

/// Seals `payload` to `recipient`'s encryption key.
pub fn seal(payload: &Payload, recipient: &EncryptionPublicKey) -> Result<Sealed, SealError> {
    let aad = associated_data(&payload.referral, &payload.sender, &payload.receiver);
    seal_with(payload, recipient, CASE_FILE_INFO, &aad)
}

/// Seals a case file the receiving organisation holds to one of its offices: the device
/// `office`, whose encryption key (granted in the network document) is `key`.
pub fn seal_for_office(
    payload: &Payload,
    office: &KeyId,
    key: &EncryptionPublicKey,
) -> Result<Sealed, SealError> {
    let aad = office_associated_data(
        associated_data(&payload.referral, &payload.sender, &payload.receiver),
        office,
    );
    seal_with(payload, key, OFFICE_INFO, &aad)
}

fn seal_with(
    payload: &Payload,
    recipient: &EncryptionPublicKey,
    info: &[u8],
    aad: &[u8],
) -> Result<Sealed, SealError> {
    let plaintext = Zeroizing::new(
        serde_json::to_vec(payload).map_err(|e| SealError::Malformed(e.to_string()))?,
    );
    let sealed = crate::sealing::seal(&plaintext, &recipient.0, info, aad).map_err(from_sealing)?;
    Ok(Sealed {
        ephemeral: sealed.ephemeral.to_vec(),
        nonce: sealed.nonce.to_vec(),
        ciphertext: sealed.ciphertext,
    })
}

/// Opens, with the keys of `identity` (the node of organisation `receiver`: its own key,
/// or the key that replaced it), a payload sealed to `receiver` for `referral` from
/// `sender`.
pub fn open(
    sealed: &Sealed,
    identity: &Identity,
    referral: &str,
    sender: &OrgId,
    receiver: &OrgId,
) -> Result<Payload, SealError> {
    let aad = associated_data(referral, sender, receiver);
    open_with(
        sealed,
        identity,
        CASE_FILE_INFO,
        &aad,
        referral,
        sender,
        receiver,
    )
}

/// Opens, on a device node of organisation `org`, a case file its organisation sealed to
/// it ([`seal_for_office`]) for `referral` from `sender`.
pub fn open_as_office(
    sealed: &Sealed,
    identity: &Identity,
    referral: &str,
    sender: &OrgId,
    org: &OrgId,
) -> Result<Payload, SealError> {
    let aad = office_associated_data(associated_data(referral, sender, org), &identity.key_id());
    open_with(sealed, identity, OFFICE_INFO, &aad, referral, sender, org)
}

fn open_with(
    sealed: &Sealed,
    identity: &Identity,
    info: &[u8],
    aad: &[u8],
    referral: &str,
    sender: &OrgId,
    receiver: &OrgId,
) -> Result<Payload, SealError> {
    let ephemeral: [u8; 32] = sealed
        .ephemeral
        .as_slice()
        .try_into()
        .map_err(|_| SealError::Malformed("the ephemeral key is not 32 bytes".into()))?;
    let nonce: [u8; 12] = sealed
        .nonce
        .as_slice()
        .try_into()
        .map_err(|_| SealError::Malformed("the nonce is not 12 bytes".into()))?;
    let shared = identity.agree(&ephemeral).ok_or(SealError::BadKey)?;
    let parts = crate::sealing::Sealed {
        ephemeral,
        nonce,
        ciphertext: sealed.ciphertext.clone(),
    };
    let plaintext = crate::sealing::open(
        &parts,
        &shared,
        &identity.encryption_public_key().0,
        info,
        aad,
    )
    .map_err(from_sealing)?;
    let payload: Payload =
        serde_json::from_slice(&plaintext).map_err(|e| SealError::Malformed(e.to_string()))?;
    if payload.referral != referral || &payload.sender != sender || &payload.receiver != receiver {
        return Err(SealError::Malformed(
            "it names another referral or other organisations".into(),
        ));
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(sender: OrgId, receiver: OrgId) -> Payload {
        Payload {
            referral: "ref-0123456789abcdef01234567".into(),
            sender,
            receiver,
            sent_at: 100,
            content: CaseContent {
                salt: fresh_salt().unwrap(),
                case_file: CaseFile {
                    name: "Aïcha Mbarga".into(),
                    phone: Some("+237 6 99 00 11 22".into()),
                    needs: vec!["vocational_training".into()],
                    ..CaseFile::default()
                },
                consent: ConsentRecord::Given(Consent {
                    method: ConsentMethod::Verbal,
                    given_at: 100,
                    expires_at: None,
                    organisation: Some(receiver),
                    service: None,
                    data: vec!["name".into(), "phone".into(), "needs".into()],
                }),
            },
        }
    }

    #[test]
    fn only_the_receiver_opens_it_and_only_for_that_referral() {
        let sender = Identity::generate().unwrap();
        let receiver = Identity::generate().unwrap();
        let third = Identity::generate().unwrap();
        let p = payload(sender.org_id(), receiver.org_id());
        let sealed = seal(&p, &receiver.encryption_public_key()).unwrap();
        let bytes = serde_json::to_vec(&sealed).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("Mbarga"));
        let opened = open(
            &sealed,
            &receiver,
            &p.referral,
            &sender.org_id(),
            &receiver.org_id(),
        )
        .unwrap();
        assert_eq!(opened, p);
        assert_eq!(opened.commitment(), p.commitment());
        assert!(
            open(
                &sealed,
                &third,
                &p.referral,
                &sender.org_id(),
                &receiver.org_id()
            )
            .is_err()
        );
        assert!(
            open(
                &sealed,
                &receiver,
                "ref-ffffffffffffffffffffffff",
                &sender.org_id(),
                &receiver.org_id()
            )
            .is_err()
        );
        let mut tampered = sealed.clone();
        tampered.ciphertext[3] ^= 1;
        assert!(matches!(
            open(
                &tampered,
                &receiver,
                &p.referral,
                &sender.org_id(),
                &receiver.org_id()
            ),
            Err(SealError::Decrypt)
        ));
    }

    #[test]
    fn a_case_file_sealed_to_an_office_opens_only_there() {
        let sender = Identity::generate().unwrap();
        let org = Identity::generate().unwrap();
        let office = Identity::generate().unwrap();
        let other_office = Identity::generate().unwrap();
        let p = payload(sender.org_id(), org.org_id());
        let (referral, from, to) = (p.referral.clone(), sender.org_id(), org.org_id());
        let sealed =
            seal_for_office(&p, &office.key_id(), &office.encryption_public_key()).unwrap();
        assert_eq!(
            open_as_office(&sealed, &office, &referral, &from, &to).unwrap(),
            p
        );
        // Not another office, not as a sealing for the organisation, not for another
        // organisation.
        assert!(open_as_office(&sealed, &other_office, &referral, &from, &to).is_err());
        assert!(open(&sealed, &office, &referral, &from, &to).is_err());
        assert!(open_as_office(&sealed, &office, &referral, &from, &from).is_err());
        // Sealed to the office's key but for another office's key id: refused.
        let misdirected =
            seal_for_office(&p, &other_office.key_id(), &office.encryption_public_key()).unwrap();
        assert!(open_as_office(&misdirected, &office, &referral, &from, &to).is_err());
        // The organisation's own sealing does not open as an office's.
        let for_org = seal(&p, &office.encryption_public_key()).unwrap();
        assert!(open_as_office(&for_org, &office, &referral, &from, &to).is_err());
    }

    #[test]
    fn the_commitment_is_salted_and_consent_is_checked() {
        let sender = Identity::generate().unwrap().org_id();
        let receiver = Identity::generate().unwrap().org_id();
        let a = payload(sender, receiver);
        let mut b = a.clone();
        b.content.salt = fresh_salt().unwrap();
        assert_ne!(a.commitment(), b.commitment());
        b.receiver = sender;
        b.content.salt = a.content.salt.clone();
        assert_eq!(a.commitment(), b.commitment());
        a.content
            .consent
            .allows(Some(&receiver), Some("svc-1"), 200)
            .unwrap();
        assert!(
            a.content
                .consent
                .allows(Some(&sender), Some("svc-1"), 200)
                .is_err()
        );
        let short = ConsentRecord::Override {
            reason: "urgent".into(),
            at: 1,
        };
        assert!(short.allows(Some(&receiver), None, 200).is_err());
        let minimised = a.content.case_file.minimise(&["needs".into()]);
        assert!(minimised.name.is_empty() && minimised.phone.is_none());
        assert_eq!(minimised.needs, a.content.case_file.needs);
        let mut bad = a.content.case_file.clone();
        bad.sex = Some("f".into());
        assert!(
            bad.validate(2026)
                .unwrap_err()
                .to_string()
                .contains("female")
        );
    }
}
