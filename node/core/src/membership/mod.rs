//! Membership: who belongs to a Passerelle network, decided by its members' quorum.
//!
//! A network is defined by its **network document** (`net/<network id>`), a signed log of
//! membership operations. Every operation is one empty Automerge change whose message holds
//! the operation as JSON ([`Operation`]), signed like any other change. The first change is
//! the genesis: it holds the [`Charter`] (name, founders, quorums, taxonomy version), and
//! the network id is derived from its hash, so two networks never mix.
//!
//! Rules (enforced identically by every node; see `docs/security.md`):
//! - Founders become members by signing the charter ([`Operation::Ratify`]). The network is
//!   *active* once every founder has ratified; until then nothing else takes effect.
//! - A member proposes an admission (carrying the candidate's own signed
//!   [`AdmissionRequest`]), a revocation or a charter amendment ([`Operation::Propose`]);
//!   the proposal counts as the proposer's approval; other members approve
//!   ([`Operation::Approve`]). It takes effect when the quorum the charter sets is reached.
//! - A member organisation delegates device keys (other nodes of the same organisation)
//!   and revokes them ([`Operation::Delegate`], [`Operation::Undelegate`]); it lets a
//!   device receive case files and ends that ([`Operation::Grant`], [`Operation::Ungrant`]).
//! - The membership is the fold of the operations in one deterministic order consistent
//!   with causality ([`causal_order`]: parents first, ties broken by change hash). Every
//!   node holding the same operations computes the same membership, whatever order they
//!   arrived in. An operation not allowed at its place in that order (an approval by a
//!   non-member, a second ratification, …) has no effect: it stays in the log, recorded as
//!   void with its reason.
//! - An organisation's key can be replaced while its id stays ([`Action::Rotate`]): by the
//!   quorum that revokes (the organisation concerned does not count), or alone by the
//!   offline recovery key the organisation registered ([`Operation::SetRecovery`],
//!   [`Operation::Recover`]). The old key's changes up to its keep-point stay; later ones
//!   are refused, and it acts for nobody any more. A quorum's rotation also drops the
//!   recovery key (whoever held the old key may have registered it).
//! - A revocation names, for each key of the revoked organisation, the last sequence number
//!   it keeps (`keep`): the revoked organisation's changes up to there stay, marked as from a
//!   former member; every later one is rejected, whether it was made before the revocation
//!   was known (concurrently) or after. [`Membership::may_write`] is that rule.

mod document;

pub use document::{NetworkDocument, NetworkDocumentError};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use automerge::ChangeHash;
use serde::{Deserialize, Serialize};

use crate::identity::{EncryptionPublicKey, KeyId, OrgId, SigningSecret};
pub use crate::ids::{InvalidId, NetworkId};

/// Largest operation message, in bytes.
pub const MAX_OPERATION_BYTES: usize = 8 * 1024;
/// Longest network name, reason or label.
pub const MAX_TEXT_CHARS: usize = 200;
/// Most founders in a charter.
pub const MAX_FOUNDERS: usize = 64;
/// Domain tag of admission request signatures.
const REQUEST_DOMAIN: &[u8] = b"passerelle/admission-request\0";
/// Domain tag of key rotations signed by a recovery key.
const ROTATION_DOMAIN: &[u8] = b"passerelle/key-rotation\0";

/// The keys that act for current members: their organisation keys and authorised devices.
pub type MemberKeys = std::sync::Arc<std::collections::HashSet<KeyId>>;

/// Errors of membership input (CLI arguments, operations, requests).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum MembershipError {
    /// A field has a value outside what it accepts.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong and what is accepted.
        message: String,
        /// The same in French.
        fr: String,
    },
}

impl MembershipError {
    /// Said in French: the field, then what is wrong.
    pub fn fr(&self) -> String {
        match self {
            Self::Invalid { field, fr, .. } => format!("{field} : {fr}"),
        }
    }
}

impl From<InvalidId> for MembershipError {
    fn from(e: InvalidId) -> Self {
        MembershipError::Invalid {
            field: e.field,
            fr: e.message.clone(),
            message: e.message,
        }
    }
}

/// A field refused: what is wrong in English and in French.
fn invalid(
    field: &'static str,
    message: impl Into<String>,
    fr: impl Into<String>,
) -> MembershipError {
    MembershipError::Invalid {
        field,
        message: message.into(),
        fr: fr.into(),
    }
}

/// How many members must approve a decision: a fixed number, or a fraction of the members.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Quorum {
    /// At least this many members (`2`).
    Count(u32),
    /// At least this fraction of the members, rounded up (`2/3`).
    Fraction {
        /// Numerator.
        num: u32,
        /// Denominator.
        den: u32,
    },
}

impl Quorum {
    /// Approvals needed when `members` organisations may approve (always at least one).
    pub fn required(&self, members: usize) -> usize {
        let needed = match *self {
            Self::Count(k) => k as usize,
            Self::Fraction { num, den } => (members * num as usize).div_ceil(den as usize),
        };
        needed.max(1)
    }
}

impl fmt::Display for Quorum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Count(k) => write!(f, "{k}"),
            Self::Fraction { num, den } => write!(f, "{num}/{den}"),
        }
    }
}

impl fmt::Debug for Quorum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Quorum {
    type Err = MembershipError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            invalid(
                "quorum",
                format!(
                    "{s:?} is not a quorum; accepted: a number of members (\"2\") or a fraction of the members (\"2/3\", \"1/2\")"
                ),
                format!(
                    "{s:?} n'est pas un quorum ; acceptés : un nombre de membres (\"2\") ou une fraction des membres (\"2/3\", \"1/2\")"
                ),
            )
        };
        let s = s.trim();
        match s.split_once('/') {
            Some((num, den)) => {
                let num: u32 = num.trim().parse().map_err(|_| bad())?;
                let den: u32 = den.trim().parse().map_err(|_| bad())?;
                if num == 0 || den == 0 || num > den || den > 1000 {
                    return Err(bad());
                }
                Ok(Self::Fraction { num, den })
            }
            None => {
                let k: u32 = s.parse().map_err(|_| bad())?;
                if k == 0 || k > 1000 {
                    return Err(bad());
                }
                Ok(Self::Count(k))
            }
        }
    }
}

impl Serialize for Quorum {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Quorum {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

fn check_text(field: &'static str, text: &str, required: bool) -> Result<(), MembershipError> {
    if required && text.trim().is_empty() {
        return Err(invalid(field, "must not be empty", "ne doit pas être vide"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(invalid(
            field,
            format!("is longer than {MAX_TEXT_CHARS} characters"),
            format!("dépasse {MAX_TEXT_CHARS} caractères"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid(
            field,
            "must not hold control characters",
            "ne doit pas contenir de caractères de contrôle",
        ));
    }
    Ok(())
}

/// The rules a network is founded on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charter {
    /// The network's name.
    pub name: String,
    /// The founding organisations (each must ratify).
    pub founders: Vec<OrgId>,
    /// Approvals needed to admit an organisation.
    pub admission: Quorum,
    /// Approvals needed to revoke a member (the member concerned does not count).
    pub revocation: Quorum,
    /// Approvals needed to amend the charter.
    pub amendment: Quorum,
    /// The service taxonomy version the network uses.
    pub taxonomy: String,
}

impl Charter {
    /// Checks the charter: a name, 1 to [`MAX_FOUNDERS`] distinct founders, quorums no
    /// founder set can never reach.
    pub fn validate(&self) -> Result<(), MembershipError> {
        check_text("name", &self.name, true)?;
        check_text("taxonomy", &self.taxonomy, true)?;
        if self.founders.is_empty() || self.founders.len() > MAX_FOUNDERS {
            return Err(invalid(
                "founders",
                format!("a charter needs 1 to {MAX_FOUNDERS} founders"),
                format!("une charte compte de 1 à {MAX_FOUNDERS} fondateurs"),
            ));
        }
        let distinct: BTreeSet<_> = self.founders.iter().collect();
        if distinct.len() != self.founders.len() {
            return Err(invalid(
                "founders",
                "a founder is listed twice",
                "un fondateur est nommé deux fois",
            ));
        }
        for (field, quorum) in [("admission", self.admission), ("amendment", self.amendment)] {
            if quorum.required(self.founders.len()) > self.founders.len() {
                return Err(invalid(
                    field,
                    format!(
                        "quorum {quorum} is more than the {} founders could ever give",
                        self.founders.len()
                    ),
                    format!(
                        "le quorum {quorum} dépasse ce que les {} fondateurs pourront jamais donner",
                        self.founders.len()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Changes to the charter; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amendment {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New admission quorum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<Quorum>,
    /// New revocation quorum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<Quorum>,
    /// New amendment quorum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amendment: Option<Quorum>,
    /// New taxonomy version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taxonomy: Option<String>,
}

impl Amendment {
    fn apply_to(&self, charter: &mut Charter) {
        if let Some(name) = &self.name {
            charter.name = name.clone();
        }
        if let Some(q) = self.admission {
            charter.admission = q;
        }
        if let Some(q) = self.revocation {
            charter.revocation = q;
        }
        if let Some(q) = self.amendment {
            charter.amendment = q;
        }
        if let Some(t) = &self.taxonomy {
            charter.taxonomy = t.clone();
        }
    }

    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What a candidate organisation signs to ask to join a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionRequest {
    /// The network it asks to join.
    pub network: NetworkId,
    /// The candidate organisation (its key).
    pub org: OrgId,
    /// Its name, as members will see it.
    pub name: String,
    /// A word to the members (who it is, who invited it).
    #[serde(default)]
    pub message: String,
    /// Unix time it was signed.
    pub created: i64,
}

/// An admission request with the candidate's signature over its exact JSON bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRequest {
    /// The request, as JSON.
    pub body: String,
    /// ed25519 signature (hex) of the candidate's key over the domain tag and `body`.
    pub signature: String,
}

impl SignedRequest {
    /// Signs a request with the candidate's key.
    pub fn sign(
        request: &AdmissionRequest,
        secret: &SigningSecret,
    ) -> Result<Self, MembershipError> {
        check_text("name", &request.name, true)?;
        check_text("message", &request.message, false)?;
        if request.org != secret.org_id() {
            return Err(invalid(
                "org",
                "a request is signed by the candidate's own key",
                "une demande est signée par la clé propre du candidat",
            ));
        }
        let body = serde_json::to_string(request)
            .map_err(|e| invalid("request", e.to_string(), e.to_string()))?;
        let signature = sign_body(REQUEST_DOMAIN, &body, secret);
        Ok(Self { body, signature })
    }

    /// Checks the signature and returns the request.
    pub fn verify(&self) -> Result<AdmissionRequest, MembershipError> {
        if self.body.len() > MAX_OPERATION_BYTES / 2 {
            return Err(invalid("request", "too large", "trop grande"));
        }
        let request: AdmissionRequest = serde_json::from_str(&self.body).map_err(|e| {
            invalid(
                "request",
                format!("does not decode: {e}"),
                format!("ne se lit pas : {e}"),
            )
        })?;
        check_text("name", &request.name, true)?;
        check_text("message", &request.message, false)?;
        verify_body(
            REQUEST_DOMAIN,
            &self.body,
            &self.signature,
            (&request.org.key(), "org"),
            (
                "does not verify for the candidate's key",
                "ne se vérifie pas avec la clé du candidat",
            ),
        )?;
        Ok(request)
    }
}

/// A decision members propose and approve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Admit the organisation that signed `request`.
    Admit {
        /// The candidate's signed request.
        request: SignedRequest,
    },
    /// Revoke a member.
    Revoke {
        /// The member.
        org: OrgId,
        /// Why (shown to every member).
        reason: String,
        /// For each key of the member (its own and its devices'), the last sequence number
        /// of its changes that stays. Anything later is rejected.
        keep: BTreeMap<KeyId, u64>,
    },
    /// Amend the charter.
    Amend {
        /// The changes.
        amendment: Amendment,
    },
    /// Replace a member's organisation key (lost or stolen) by a new one; its id stays.
    Rotate {
        /// The member.
        org: OrgId,
        /// Its new key (the `node key` of its new node's `status`).
        key: KeyId,
        /// Why (shown to every member).
        reason: String,
        /// For each of its keys, the last sequence number of its changes that stays.
        keep: BTreeMap<KeyId, u64>,
    },
}

/// What an organisation's offline recovery key signs to replace the organisation's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationStatement {
    /// The network.
    pub network: NetworkId,
    /// The organisation.
    pub org: OrgId,
    /// Its new key.
    pub key: KeyId,
    /// Unix time it was signed.
    pub created: i64,
}

/// A rotation statement with the recovery key's signature over its exact JSON bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRotation {
    /// The statement, as JSON.
    pub body: String,
    /// ed25519 signature (hex) of the recovery key over the domain tag and `body`.
    pub signature: String,
}

/// How a recovery key's secret is written for keeping offline.
const RECOVERY_PREFIX: &str = "passerelle-recovery-secret-1:";

/// An organisation's offline recovery key, written as text: the prefix and 52 base32
/// characters of its 32 secret bytes.
pub fn recovery_secret_text(secret: &SigningSecret) -> zeroize::Zeroizing<String> {
    zeroize::Zeroizing::new(format!(
        "{RECOVERY_PREFIX}{}",
        data_encoding::BASE32_NOPAD
            .encode(secret.to_secret_bytes().as_slice())
            .to_lowercase()
    ))
}

/// A recovery key's secret from its text (surrounding space ignored).
pub fn recovery_secret_from_text(text: &str) -> Result<SigningSecret, MembershipError> {
    let not_one = || {
        invalid(
            "secret_file",
            format!("not a recovery key's secret (it starts with {RECOVERY_PREFIX})"),
            format!(
                "ce n'est pas le secret d'une clé de secours (il commence par {RECOVERY_PREFIX})"
            ),
        )
    };
    let body = text
        .trim()
        .strip_prefix(RECOVERY_PREFIX)
        .ok_or_else(not_one)?;
    let bytes = zeroize::Zeroizing::new(
        data_encoding::BASE32_NOPAD
            .decode(body.to_ascii_uppercase().as_bytes())
            .map_err(|_| not_one())?,
    );
    let bytes: &[u8; 32] = bytes.as_slice().try_into().map_err(|_| not_one())?;
    Ok(SigningSecret::from_bytes(bytes))
}

impl SignedRotation {
    /// Signs a statement with the organisation's recovery key.
    pub fn sign(statement: &RotationStatement, recovery: &SigningSecret) -> Self {
        let body = serde_json::to_string(statement).unwrap_or_default();
        let signature = sign_body(ROTATION_DOMAIN, &body, recovery);
        Self { body, signature }
    }

    /// Checks the signature against the recovery key `recovery`; returns the statement.
    pub fn verify(&self, recovery: &KeyId) -> Result<RotationStatement, MembershipError> {
        if self.body.len() > MAX_OPERATION_BYTES / 2 {
            return Err(invalid("rotation", "too large", "trop grande"));
        }
        let statement: RotationStatement = serde_json::from_str(&self.body).map_err(|e| {
            invalid(
                "rotation",
                format!("does not decode: {e}"),
                format!("ne se lit pas : {e}"),
            )
        })?;
        verify_body(
            ROTATION_DOMAIN,
            &self.body,
            &self.signature,
            (recovery, "recovery"),
            (
                "does not verify for the organisation's recovery key",
                "ne se vérifie pas avec la clé de secours de l'organisation",
            ),
        )?;
        Ok(statement)
    }
}

/// The hex ed25519 signature of `secret` over `domain` and `body` (what a signed request
/// or rotation statement carries beside its exact JSON bytes).
fn sign_body(domain: &[u8], body: &str, secret: &SigningSecret) -> String {
    let signature = secret.sign(&[domain, body.as_bytes()].concat());
    data_encoding::HEXLOWER.encode(&signature.to_bytes())
}

/// Checks `signature` (hex) of `key` over `domain` and `body`; `key.1` names the field of a
/// key that is not one, `refused` says why a signature that does not verify is refused.
fn verify_body(
    domain: &[u8],
    body: &str,
    signature: &str,
    key: (&KeyId, &'static str),
    refused: (&str, &str),
) -> Result<(), MembershipError> {
    let signature = data_encoding::HEXLOWER
        .decode(signature.as_bytes())
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| ed25519_dalek::Signature::from_bytes(&b))
        .ok_or_else(|| {
            invalid(
                "signature",
                "not a 128-digit hex ed25519 signature",
                "n'est pas une signature ed25519 de 128 chiffres hexadécimaux",
            )
        })?;
    let verifying = key
        .0
        .verifying_key()
        .map_err(|_| invalid(key.1, "not a public key", "n'est pas une clé publique"))?;
    verifying
        .verify_strict(&[domain, body.as_bytes()].concat(), &signature)
        .map_err(|_| invalid("signature", refused.0, refused.1))
}

/// One operation of the network document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    /// The genesis: the network's charter.
    Charter {
        /// The charter.
        charter: Charter,
    },
    /// A founder signs the charter.
    Ratify,
    /// A member proposes a decision (and approves it).
    Propose {
        /// The decision.
        #[serde(flatten)]
        action: Action,
    },
    /// A member approves a proposal.
    Approve {
        /// The proposal's change hash (hex).
        proposal: String,
    },
    /// A member organisation authorises another node of its own (a device key).
    Delegate {
        /// The device's key.
        device: KeyId,
        /// Where it runs ("Bureau régional de Douala").
        label: String,
    },
    /// A member organisation withdraws a device key.
    Undelegate {
        /// The device's key.
        device: KeyId,
        /// The last sequence number of the device's changes that stays.
        keep: u64,
    },
    /// A member organisation lets one of its devices (a regional office) receive case
    /// files: its node may seal a case file it holds to the device's own X25519 key.
    Grant {
        /// The device's key.
        device: KeyId,
        /// The device's own encryption key (its `passerelle status`), which case files
        /// are sealed to.
        case_key: EncryptionPublicKey,
    },
    /// A member organisation ends a device's access to case files: the device destroys
    /// every case file it holds, and none is sealed to it again.
    Ungrant {
        /// The device's key.
        device: KeyId,
    },
    /// A member organisation registers its offline recovery key (once; a quorum's rotation
    /// drops it).
    SetRecovery {
        /// The recovery key's public half.
        key: KeyId,
    },
    /// A member (any of its keys) brings a rotation signed by another organisation's
    /// recovery key: it takes effect without a quorum.
    Recover {
        /// The statement, signed by the recovery key.
        rotation: SignedRotation,
        /// For each of the organisation's keys, the last sequence number that stays (what
        /// the bringing node held of them).
        keep: BTreeMap<KeyId, u64>,
    },
}

/// Version field of operation messages.
const OPERATION_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Envelope {
    v: u32,
    #[serde(flatten)]
    operation: Operation,
}

impl Operation {
    /// The change message that carries this operation.
    pub fn to_message(&self) -> String {
        serde_json::to_string(&Envelope {
            v: OPERATION_VERSION,
            operation: self.clone(),
        })
        .unwrap_or_default()
    }

    /// Reads an operation from a change message.
    pub fn from_message(message: &str) -> Result<Self, MembershipError> {
        if message.len() > MAX_OPERATION_BYTES {
            return Err(invalid(
                "operation",
                format!("over {MAX_OPERATION_BYTES} bytes"),
                format!("dépasse {MAX_OPERATION_BYTES} octets"),
            ));
        }
        let envelope: Envelope = serde_json::from_str(message).map_err(|e| {
            invalid(
                "operation",
                format!("does not decode: {e}"),
                format!("ne se lit pas : {e}"),
            )
        })?;
        if envelope.v != OPERATION_VERSION {
            return Err(invalid(
                "operation",
                format!("unknown version {}", envelope.v),
                format!("version inconnue {}", envelope.v),
            ));
        }
        Ok(envelope.operation)
    }
}

/// One operation with its place in the causal graph, as the fold reads it.
#[derive(Debug, Clone)]
pub struct LoggedOperation {
    /// The change's hash.
    pub hash: ChangeHash,
    /// Its dependencies.
    pub deps: Vec<ChangeHash>,
    /// The key that signed it.
    pub author: KeyId,
    /// Unix time the author gave it.
    pub time: i64,
    /// The operation.
    pub operation: Operation,
    /// For an admission proposal: the candidate's request, verified once here (the fold
    /// reads it many times).
    pub admission: Option<Result<AdmissionRequest, MembershipError>>,
}

impl LoggedOperation {
    /// An operation with its place in the graph; verifies an admission request it carries.
    pub fn new(
        hash: ChangeHash,
        deps: Vec<ChangeHash>,
        author: KeyId,
        time: i64,
        operation: Operation,
    ) -> Self {
        let admission = match &operation {
            Operation::Propose {
                action: Action::Admit { request },
            } => Some(request.verify()),
            _ => None,
        };
        Self {
            hash,
            deps,
            author,
            time,
            operation,
            admission,
        }
    }
}

/// The order in which the fold reads operations: every operation after its dependencies;
/// among those ready at the same time, the smallest hash first. Operations whose
/// dependencies are not all present are left out.
pub fn causal_order(operations: &[LoggedOperation]) -> Vec<usize> {
    let index: HashMap<ChangeHash, usize> = operations
        .iter()
        .enumerate()
        .map(|(i, o)| (o.hash, i))
        .collect();
    let mut waiting: Vec<usize> = vec![0; operations.len()];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); operations.len()];
    let mut ready = BTreeSet::new();
    for (i, op) in operations.iter().enumerate() {
        let mut missing = false;
        for dep in &op.deps {
            match index.get(dep) {
                Some(&parent) => {
                    waiting[i] += 1;
                    children[parent].push(i);
                }
                None => missing = true,
            }
        }
        if missing {
            waiting[i] = usize::MAX;
        } else if waiting[i] == 0 {
            ready.insert((op.hash, i));
        }
    }
    let mut order = Vec::with_capacity(operations.len());
    while let Some((hash, i)) = ready.pop_first() {
        let _ = hash;
        order.push(i);
        for &child in &children[i] {
            if waiting[child] == usize::MAX {
                continue;
            }
            waiting[child] -= 1;
            if waiting[child] == 0 {
                ready.insert((operations[child].hash, child));
            }
        }
    }
    order
}

/// A member organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The organisation.
    pub org: OrgId,
    /// Its name when admitted (its profile holds the current one).
    pub name: String,
    /// A founder (admitted by the charter).
    pub founder: bool,
    /// The change that made it a member (ratification or the admission's last approval).
    pub since: String,
    /// Who approved its admission (empty for founders).
    pub approved_by: Vec<OrgId>,
}

/// A former member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormerMember {
    /// The organisation.
    pub org: OrgId,
    /// Its name.
    pub name: String,
    /// Why it was revoked.
    pub reason: String,
    /// Last sequence number kept per key.
    pub keep: BTreeMap<KeyId, u64>,
    /// Who approved the revocation.
    pub approved_by: Vec<OrgId>,
}

/// A device key of a member organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The device's key.
    pub key: KeyId,
    /// The organisation it writes for.
    pub org: OrgId,
    /// Where it runs.
    pub label: String,
    /// Once withdrawn: the last sequence number of its changes that stays.
    pub withdrawn_keep: Option<u64>,
    /// While its organisation lets it receive case files: its encryption key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_key: Option<EncryptionPublicKey>,
}

/// An organisation key that was replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredKey {
    /// The key.
    pub key: KeyId,
    /// The organisation it signed for.
    pub org: OrgId,
    /// The last sequence number of its changes that stays.
    pub keep: u64,
    /// The key that replaced it.
    pub replaced_by: KeyId,
    /// `quorum` or `recovery`.
    pub how: String,
    /// The change that replaced it (the decision's last approval, or the recovery).
    pub change: String,
}

/// Where a proposal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    /// Waiting for approvals.
    Open,
    /// The quorum approved it; it took effect.
    Decided,
}

/// A proposal and its approvals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The proposal's change hash (hex): what `Approve` names.
    pub id: String,
    /// The decision.
    pub action: Action,
    /// What it concerns, for people: the candidate or member's id, or "charter".
    pub subject: String,
    /// The subject's name where known.
    pub subject_name: String,
    /// Who proposed it.
    pub proposer: OrgId,
    /// Who approved it (the proposer included).
    pub approvals: BTreeSet<OrgId>,
    /// Approvals needed (set when it was proposed, from the charter and member count).
    pub required: usize,
    /// Where it stands.
    pub status: ProposalStatus,
}

/// Why an operation had no effect (what [`VoidOperation::reason`] says, in words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Void {
    /// A charter after the genesis.
    #[error("a second charter")]
    SecondCharter,
    /// A ratification by a key that is not a founder's.
    #[error("ratified by a key that is not a founder")]
    NotAFounder,
    /// A founder ratifying twice.
    #[error("already ratified")]
    AlreadyRatified,
    /// A ratification by a founder revoked meanwhile.
    #[error("a revoked founder")]
    RevokedFounder,
    /// An approval whose proposal field is not a change hash.
    #[error("names no proposal hash")]
    NoProposalHash,
    /// An approval of a proposal not read.
    #[error("approves an unknown proposal")]
    UnknownProposal,
    /// An approval of a proposal already decided.
    #[error("the proposal was already decided")]
    AlreadyDecided,
    /// A member approving its own revocation.
    #[error("a member may not approve its own revocation")]
    ApprovesOwnRevocation,
    /// A member approving the rotation of its own key.
    #[error("a member may not approve the rotation of its own key")]
    ApprovesOwnRotation,
    /// A member proposing the rotation of its own key.
    #[error("a member may not propose the rotation of its own key: another member does")]
    ProposesOwnRotation,
    /// A second recovery key.
    #[error("the organisation already registered a recovery key")]
    RecoveryRegistered,
    /// A recovery by an organisation with no recovery key.
    #[error("the organisation registered no recovery key")]
    NoRecoveryKey,
    /// A recovery statement that does not verify or is for something else.
    #[error("{0}")]
    BadRotation(MembershipError),
    /// A second open decision about the same member.
    #[error("a decision about this member (revocation or key rotation) is already open")]
    MemberDecisionPending,
    /// A signer that is not the organisation's current own key.
    #[error("signed by a key that is not a member organisation's own")]
    NotOwnKey,
    /// A second approval by the same member.
    #[error("already approved by this member")]
    AlreadyApproved,
    /// A delegation signed by a key that is not a member organisation's own.
    #[error("only a member organisation's own key delegates devices")]
    DelegatedByNonMember,
    /// A delegation of a key the network already knows.
    #[error("that key already belongs to the network")]
    KeyTaken,
    /// A withdrawal signed by a key that is not a member organisation's own.
    #[error("only a member organisation's own key withdraws devices")]
    WithdrawnByNonMember,
    /// A withdrawal of a key that is not a device of the signer.
    #[error("not a device of this organisation")]
    NotItsDevice,
    /// A second withdrawal.
    #[error("the device was already withdrawn")]
    AlreadyWithdrawn,
    /// A grant or its end signed by a key that is not a member organisation's own.
    #[error("only a member organisation's own key grants devices access to case files")]
    GrantedByNonMember,
    /// A grant to a device already granted.
    #[error("the device already receives case files")]
    AlreadyGranted,
    /// The end of a grant that was not given.
    #[error("the device does not receive case files")]
    NotGranted,
    /// A decision before every founder ratified.
    #[error("the network is not active yet (a founder has not ratified)")]
    NotActive,
    /// A decision signed by a key that acts for no member.
    #[error("signed by a key that is not a member's")]
    NotAMembersKey,
    /// An admission proposal whose request was not verified when read.
    #[error("the admission request was not read")]
    RequestNotRead,
    /// An admission request that does not verify or decode.
    #[error("{0}")]
    BadRequest(MembershipError),
    /// An admission request for another network.
    #[error("the request is for another network")]
    OtherNetwork,
    /// An admission of an organisation the network already knows.
    #[error("the candidate is already a member, a former member or a device")]
    AlreadyKnown,
    /// A second open proposal to admit the same organisation.
    #[error("an admission of this organisation is already proposed")]
    AdmissionPending,
    /// A revocation of an organisation that is not a member.
    #[error("revokes an organisation that is not a member")]
    NotAMember,
    /// A member proposing its own revocation.
    #[error("a member may not propose its own revocation")]
    ProposesOwnRevocation,
    /// An amendment that changes nothing.
    #[error("an amendment that changes nothing")]
    EmptyAmendment,
    /// A second open amendment.
    #[error("an amendment is already proposed")]
    AmendmentPending,
    /// A text field out of bounds.
    #[error("{0}")]
    Text(MembershipError),
}

impl Void {
    /// Why, in French (a field's own words stay as the rule wrote them).
    pub fn fr(&self) -> String {
        match self {
            Self::SecondCharter => "une seconde charte",
            Self::NotAFounder => "ratifiée par une clé qui n'est pas celle d'un fondateur",
            Self::AlreadyRatified => "déjà ratifiée",
            Self::RevokedFounder => "un fondateur révoqué",
            Self::NoProposalHash => "ne nomme aucune proposition",
            Self::UnknownProposal => "approuve une proposition inconnue",
            Self::AlreadyDecided => "la proposition a déjà été décidée",
            Self::ApprovesOwnRevocation => "un membre ne peut pas approuver sa propre révocation",
            Self::ApprovesOwnRotation => {
                "un membre ne peut pas approuver le remplacement de sa propre clé"
            }
            Self::ProposesOwnRotation => {
                "un membre ne peut pas proposer le remplacement de sa propre clé : un autre membre le propose"
            }
            Self::RecoveryRegistered => "l'organisation a déjà enregistré une clé de secours",
            Self::NoRecoveryKey => "l'organisation n'a enregistré aucune clé de secours",
            Self::BadRotation(e) | Self::BadRequest(e) | Self::Text(e) => return e.fr(),
            Self::MemberDecisionPending => {
                "une décision sur ce membre (révocation ou remplacement de clé) est déjà ouverte"
            }
            Self::NotOwnKey => "signée par une clé qui n'est pas la clé propre d'un membre",
            Self::AlreadyApproved => "déjà approuvée par ce membre",
            Self::DelegatedByNonMember => {
                "seule la clé propre d'une organisation membre autorise des appareils"
            }
            Self::KeyTaken => "cette clé appartient déjà au réseau",
            Self::WithdrawnByNonMember => {
                "seule la clé propre d'une organisation membre retire des appareils"
            }
            Self::NotItsDevice => "ce n'est pas un appareil de cette organisation",
            Self::AlreadyWithdrawn => "l'appareil a déjà été retiré",
            Self::GrantedByNonMember => {
                "seule la clé propre d'une organisation membre donne à un appareil l'accès aux dossiers"
            }
            Self::AlreadyGranted => "l'appareil reçoit déjà des dossiers",
            Self::NotGranted => "l'appareil ne reçoit pas de dossiers",
            Self::NotActive => {
                "le réseau n'est pas encore actif (un fondateur n'a pas ratifié la charte)"
            }
            Self::NotAMembersKey => "signée par une clé qui n'est pas celle d'un membre",
            Self::RequestNotRead => "la demande d'admission n'a pas été lue",
            Self::OtherNetwork => "la demande est pour un autre réseau",
            Self::AlreadyKnown => {
                "le candidat est déjà membre, ancien membre ou appareil"
            }
            Self::AdmissionPending => "une admission de cette organisation est déjà proposée",
            Self::NotAMember => "révoque une organisation qui n'est pas membre",
            Self::ProposesOwnRevocation => "un membre ne peut pas proposer sa propre révocation",
            Self::EmptyAmendment => "un amendement qui ne change rien",
            Self::AmendmentPending => "un amendement est déjà proposé",
        }
        .to_owned()
    }
}

/// An operation that had no effect, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoidOperation {
    /// The change hash (hex).
    pub change: String,
    /// Who signed it.
    pub author: KeyId,
    /// Why it had no effect.
    pub reason: String,
    /// The same, as a rule (for saying it in another language).
    #[serde(skip)]
    pub why: Option<Void>,
}

/// Why a key may not write a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteRefusal {
    /// The owner is not (yet) a member of the network.
    #[error("{owner} is not a member of the network")]
    NotMember {
        /// The document's owner.
        owner: OrgId,
    },
    /// The key is neither the owner's nor one of its devices.
    #[error("{author} may not write the document of {owner}: only its own keys do")]
    NotOwnersKey {
        /// The signing key.
        author: KeyId,
        /// The document's owner.
        owner: OrgId,
    },
    /// The owner (or the device) was revoked and this change comes after what it keeps.
    #[error("change {seq} of {author} comes after its revocation (it keeps up to {keep})")]
    Revoked {
        /// The signing key.
        author: KeyId,
        /// The change's sequence number.
        seq: u64,
        /// The last sequence number kept.
        keep: u64,
    },
}

/// The membership of a network: the fold of its operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The network.
    pub network: NetworkId,
    /// The charter as amended.
    pub charter: Charter,
    /// Founders who signed the charter.
    pub ratified: BTreeSet<OrgId>,
    /// Current members.
    pub members: BTreeMap<OrgId, Member>,
    /// Former members.
    pub revoked: BTreeMap<OrgId, FormerMember>,
    /// Device keys of members.
    pub devices: BTreeMap<KeyId, Device>,
    /// Organisations whose key was replaced: their current key.
    #[serde(default)]
    pub org_keys: BTreeMap<OrgId, KeyId>,
    /// Keys replaced, with their keep-points (the fingerprint history).
    #[serde(default)]
    pub retired: BTreeMap<KeyId, RetiredKey>,
    /// Recovery keys registered by organisations.
    #[serde(default)]
    pub recovery: BTreeMap<OrgId, KeyId>,
    /// Every proposal, open or decided.
    pub proposals: Vec<Proposal>,
    /// Operations without effect.
    pub void: Vec<VoidOperation>,
    /// Operations read.
    pub operations: usize,
    /// Proposals by change hash.
    #[serde(skip)]
    proposal_index: HashMap<ChangeHash, usize>,
    /// Open proposals by subject.
    #[serde(skip)]
    open_by_subject: HashMap<String, usize>,
    /// The organisation of each current key that is not its id.
    #[serde(skip)]
    key_owner: HashMap<KeyId, OrgId>,
}

impl Membership {
    /// Folds the operations of a network document. `None` when the genesis is missing.
    pub fn fold(network: NetworkId, operations: &[LoggedOperation]) -> Option<Self> {
        let order = causal_order(operations);
        let genesis = operations.iter().find(|o| network.is_genesis(&o.hash))?;
        let Operation::Charter { charter } = &genesis.operation else {
            return None;
        };
        let mut state = Self {
            network,
            charter: charter.clone(),
            ratified: BTreeSet::new(),
            members: BTreeMap::new(),
            revoked: BTreeMap::new(),
            devices: BTreeMap::new(),
            org_keys: BTreeMap::new(),
            retired: BTreeMap::new(),
            recovery: BTreeMap::new(),
            proposals: Vec::new(),
            void: Vec::new(),
            operations: 0,
            proposal_index: HashMap::new(),
            open_by_subject: HashMap::new(),
            key_owner: HashMap::new(),
        };
        for i in order {
            let op = &operations[i];
            if op.hash == genesis.hash {
                state.operations += 1;
                continue;
            }
            state.read(op);
        }
        Some(state)
    }

    /// True once every founder has signed the charter.
    pub fn is_active(&self) -> bool {
        self.charter
            .founders
            .iter()
            .all(|f| self.ratified.contains(f))
    }

    /// The key an organisation signs with now: its id's key, or the one that replaced it.
    pub fn own_key_of(&self, org: &OrgId) -> KeyId {
        self.org_keys.get(org).copied().unwrap_or_else(|| org.key())
    }

    /// The organisation whose current own key `key` is (member or not), `None` for a
    /// retired key or one that names no organisation.
    pub fn org_by_own_key(&self, key: &KeyId) -> Option<OrgId> {
        if self.retired.contains_key(key) {
            return None;
        }
        if let Some(org) = self.key_owner.get(key) {
            return Some(*org);
        }
        let org = key.as_own_org();
        (!self.org_keys.contains_key(&org) && !self.devices.contains_key(key)).then_some(org)
    }

    /// The keys an organisation signed with before its current one, oldest first.
    pub fn key_history(&self, org: &OrgId) -> Vec<&RetiredKey> {
        let mut history: Vec<&RetiredKey> =
            self.retired.values().filter(|r| r.org == *org).collect();
        // Each replaced key names its successor: follow the chain from the id's key.
        let mut ordered = Vec::with_capacity(history.len());
        let mut next = org.key();
        while let Some(i) = history.iter().position(|r| r.key == next) {
            let r = history.remove(i);
            next = r.replaced_by;
            ordered.push(r);
        }
        ordered.extend(history);
        ordered
    }

    /// The member organisation a key acts for: its own key, or an active device of it.
    pub fn acting_member(&self, key: &KeyId) -> Option<OrgId> {
        if let Some(org) = self
            .org_by_own_key(key)
            .filter(|org| self.members.contains_key(org))
        {
            return Some(org);
        }
        self.devices
            .get(key)
            .filter(|d| d.withdrawn_keep.is_none() && self.members.contains_key(&d.org))
            .map(|d| d.org)
    }

    /// Every key that acts for a current member: the members' organisation keys and their
    /// authorised devices (what [`Membership::acting_member`] answers for).
    pub fn acting_keys(&self) -> std::collections::HashSet<KeyId> {
        let mut keys: std::collections::HashSet<KeyId> = self
            .members
            .keys()
            .map(|org| self.own_key_of(org))
            .collect();
        keys.extend(
            self.devices
                .values()
                .filter(|d| d.withdrawn_keep.is_none() && self.members.contains_key(&d.org))
                .map(|d| d.key),
        );
        keys
    }

    /// True if the key may appear in the network document at all: a founder, a current or
    /// former member, or a device of one. Changes by any other key are refused.
    pub fn knows_key(&self, key: &KeyId) -> bool {
        let org = key.as_own_org();
        self.charter.founders.contains(&org)
            || self.members.contains_key(&org)
            || self.revoked.contains_key(&org)
            || self.devices.contains_key(key)
            || self.retired.contains_key(key)
            || self.key_owner.contains_key(key)
            || self.recovery.values().any(|k| k == key)
    }

    /// The organisation a key belongs to (itself for an organisation key).
    pub fn organisation_of(&self, key: &KeyId) -> OrgId {
        self.devices
            .get(key)
            .map(|d| d.org)
            .or_else(|| self.key_owner.get(key).copied())
            .or_else(|| self.retired.get(key).map(|r| r.org))
            .unwrap_or_else(|| key.as_own_org())
    }

    /// The write rule of organisation documents: may `author` write change number `seq`
    /// (its Automerge sequence number) of `owner`'s document?
    pub fn may_write(&self, owner: &OrgId, author: &KeyId, seq: u64) -> Result<(), WriteRefusal> {
        if let Some(retired) = self.retired.get(author).filter(|r| r.org == *owner) {
            // A replaced key: what it wrote up to its keep-point stays (and, for a former
            // member, up to the revocation's keep-point too).
            let mut keep = retired.keep;
            if let Some(former) = self.revoked.get(owner) {
                keep = keep.min(former.keep.get(author).copied().unwrap_or(0));
            } else if !self.members.contains_key(owner) {
                return Err(WriteRefusal::NotMember { owner: *owner });
            }
            if seq <= keep {
                return Ok(());
            }
            return Err(WriteRefusal::Revoked {
                author: *author,
                seq,
                keep,
            });
        }
        let own_key = *author == self.own_key_of(owner);
        let device = self.devices.get(author).filter(|d| d.org == *owner);
        if !own_key && device.is_none() {
            return Err(WriteRefusal::NotOwnersKey {
                author: *author,
                owner: *owner,
            });
        }
        if self.members.contains_key(owner) {
            if let Some(keep) = device.and_then(|d| d.withdrawn_keep)
                && seq > keep
            {
                return Err(WriteRefusal::Revoked {
                    author: *author,
                    seq,
                    keep,
                });
            }
            return Ok(());
        }
        if let Some(former) = self.revoked.get(owner) {
            let mut keep = former.keep.get(author).copied().unwrap_or(0);
            if let Some(device_keep) = device.and_then(|d| d.withdrawn_keep) {
                keep = keep.min(device_keep);
            }
            if seq <= keep {
                return Ok(());
            }
            return Err(WriteRefusal::Revoked {
                author: *author,
                seq,
                keep,
            });
        }
        Err(WriteRefusal::NotMember { owner: *owner })
    }

    /// The open proposal about `subject` (an organisation id, or "charter"), if any.
    pub fn open_proposal_about(&self, subject: &str) -> Option<&Proposal> {
        self.open_by_subject
            .get(subject)
            .map(|&i| &self.proposals[i])
    }

    /// Reads one more operation that comes after every one read so far (its effect, or
    /// its record as void). [`Membership::fold`] is this over the causal order; a node
    /// appending its own new operation (which depends on everything it holds) uses it
    /// directly.
    pub fn read(&mut self, op: &LoggedOperation) {
        self.operations += 1;
        if let Err(reason) = self.step(op) {
            self.void.push(VoidOperation {
                change: op.hash.to_string(),
                author: op.author,
                reason: reason.to_string(),
                why: Some(reason),
            });
        }
    }

    /// True if `hash` was read and had no effect; the reason.
    pub fn void_reason(&self, hash: &ChangeHash) -> Option<&str> {
        let hash = hash.to_string();
        self.void
            .iter()
            .rev()
            .find(|v| v.change == hash)
            .map(|v| v.reason.as_str())
    }

    /// Why `hash` had no effect, as a rule, if it was read and had none.
    pub fn void_of(&self, hash: &ChangeHash) -> Option<&Void> {
        let hash = hash.to_string();
        self.void
            .iter()
            .rev()
            .find(|v| v.change == hash)
            .and_then(|v| v.why.as_ref())
    }

    fn step(&mut self, op: &LoggedOperation) -> Result<(), Void> {
        match &op.operation {
            Operation::Charter { .. } => Err(Void::SecondCharter),
            Operation::Ratify => {
                let founder = op.author.as_own_org();
                if !self.charter.founders.contains(&founder) {
                    return Err(Void::NotAFounder);
                }
                if !self.ratified.insert(founder) {
                    return Err(Void::AlreadyRatified);
                }
                if self.revoked.contains_key(&founder) {
                    return Err(Void::RevokedFounder);
                }
                self.members.insert(
                    founder,
                    Member {
                        org: founder,
                        name: String::new(),
                        founder: true,
                        since: op.hash.to_string(),
                        approved_by: Vec::new(),
                    },
                );
                Ok(())
            }
            Operation::Propose { action } => {
                let proposer = self.acting_for_decision(&op.author)?;
                let (subject, subject_name, required) =
                    self.check_action(action, op.admission.as_ref(), &proposer)?;
                let proposal = Proposal {
                    id: op.hash.to_string(),
                    action: action.clone(),
                    subject,
                    subject_name,
                    proposer,
                    approvals: BTreeSet::from([proposer]),
                    required,
                    status: ProposalStatus::Open,
                };
                self.proposal_index.insert(op.hash, self.proposals.len());
                self.open_by_subject
                    .insert(proposal.subject.clone(), self.proposals.len());
                self.proposals.push(proposal);
                self.try_decide(self.proposals.len() - 1, op);
                Ok(())
            }
            Operation::Approve { proposal } => {
                let approver = self.acting_for_decision(&op.author)?;
                let hash: ChangeHash = proposal.parse().map_err(|_| Void::NoProposalHash)?;
                let index = *self
                    .proposal_index
                    .get(&hash)
                    .ok_or(Void::UnknownProposal)?;
                let p = &mut self.proposals[index];
                if p.status != ProposalStatus::Open {
                    return Err(Void::AlreadyDecided);
                }
                if let Action::Revoke { org, .. } = &p.action
                    && *org == approver
                {
                    return Err(Void::ApprovesOwnRevocation);
                }
                if let Action::Rotate { org, .. } = &p.action
                    && *org == approver
                {
                    return Err(Void::ApprovesOwnRotation);
                }
                if !p.approvals.insert(approver) {
                    return Err(Void::AlreadyApproved);
                }
                self.try_decide(index, op);
                Ok(())
            }
            Operation::Delegate { device, label } => {
                let org = self.member_of_own_key(&op.author, Void::DelegatedByNonMember)?;
                check_text("label", label, false).map_err(Void::Text)?;
                if self.knows_key(device) {
                    return Err(Void::KeyTaken);
                }
                self.devices.insert(
                    *device,
                    Device {
                        key: *device,
                        org,
                        label: label.clone(),
                        withdrawn_keep: None,
                        case_key: None,
                    },
                );
                Ok(())
            }
            Operation::Undelegate { device, keep } => {
                let entry = self.own_active_device(op, device, Void::WithdrawnByNonMember)?;
                entry.withdrawn_keep = Some(*keep);
                // A withdrawn device receives no case file either.
                entry.case_key = None;
                Ok(())
            }
            Operation::Grant { device, case_key } => {
                let entry = self.own_active_device(op, device, Void::GrantedByNonMember)?;
                if entry.case_key.is_some() {
                    return Err(Void::AlreadyGranted);
                }
                entry.case_key = Some(*case_key);
                Ok(())
            }
            Operation::Ungrant { device } => {
                let entry = self.own_active_device(op, device, Void::GrantedByNonMember)?;
                if entry.case_key.take().is_none() {
                    return Err(Void::NotGranted);
                }
                Ok(())
            }
            Operation::SetRecovery { key } => {
                if !self.is_active() {
                    return Err(Void::NotActive);
                }
                let org = self.member_of_own_key(&op.author, Void::NotOwnKey)?;
                if self.recovery.contains_key(&org) {
                    return Err(Void::RecoveryRegistered);
                }
                if self.knows_key(key) {
                    return Err(Void::KeyTaken);
                }
                self.recovery.insert(org, *key);
                Ok(())
            }
            Operation::Recover { rotation, keep } => {
                self.acting_for_decision(&op.author)?;
                let org = serde_json::from_str::<RotationStatement>(&rotation.body)
                    .map_err(|e| {
                        Void::BadRotation(invalid(
                            "rotation",
                            format!("does not decode: {e}"),
                            format!("ne se lit pas : {e}"),
                        ))
                    })?
                    .org;
                let recovery = *self.recovery.get(&org).ok_or(Void::NoRecoveryKey)?;
                let statement = rotation.verify(&recovery).map_err(Void::BadRotation)?;
                if statement.network != self.network {
                    return Err(Void::OtherNetwork);
                }
                if !self.members.contains_key(&org) {
                    return Err(Void::NotAMember);
                }
                if self.knows_key(&statement.key) {
                    return Err(Void::KeyTaken);
                }
                self.rotate(org, statement.key, keep, "recovery", op);
                Ok(())
            }
        }
    }

    /// The member whose current own key `key` is; `void` when it is no member's.
    fn member_of_own_key(&self, key: &KeyId, void: Void) -> Result<OrgId, Void> {
        self.org_by_own_key(key)
            .filter(|org| self.members.contains_key(org))
            .ok_or(void)
    }

    /// The device `device` of the member whose own key signed `op`, still authorised
    /// (`void` when the signer is no member's own key).
    fn own_active_device(
        &mut self,
        op: &LoggedOperation,
        device: &KeyId,
        void: Void,
    ) -> Result<&mut Device, Void> {
        let org = self.member_of_own_key(&op.author, void)?;
        let entry = self
            .devices
            .get_mut(device)
            .filter(|d| d.org == org)
            .ok_or(Void::NotItsDevice)?;
        if entry.withdrawn_keep.is_some() {
            return Err(Void::AlreadyWithdrawn);
        }
        Ok(entry)
    }

    /// The encryption key case files are sealed to for `device`, while its organisation
    /// (a current member) lets it receive them and it is not withdrawn.
    pub fn office_case_key(&self, device: &KeyId) -> Option<EncryptionPublicKey> {
        self.devices
            .get(device)
            .filter(|d| d.withdrawn_keep.is_none() && self.members.contains_key(&d.org))
            .and_then(|d| d.case_key)
    }

    /// The member a proposal or approval counts for.
    fn acting_for_decision(&self, key: &KeyId) -> Result<OrgId, Void> {
        if !self.is_active() {
            return Err(Void::NotActive);
        }
        self.acting_member(key).ok_or(Void::NotAMembersKey)
    }

    fn check_action(
        &self,
        action: &Action,
        admission: Option<&Result<AdmissionRequest, MembershipError>>,
        proposer: &OrgId,
    ) -> Result<(String, String, usize), Void> {
        let members = self.members.len();
        match action {
            Action::Admit { .. } => {
                let request = admission
                    .ok_or(Void::RequestNotRead)?
                    .clone()
                    .map_err(Void::BadRequest)?;
                if request.network != self.network {
                    return Err(Void::OtherNetwork);
                }
                if self.knows_key(&request.org.key()) {
                    return Err(Void::AlreadyKnown);
                }
                let subject = request.org.to_string();
                if self.open_proposal_about(&subject).is_some() {
                    return Err(Void::AdmissionPending);
                }
                Ok((
                    subject,
                    request.name,
                    self.charter.admission.required(members),
                ))
            }
            Action::Revoke { org, reason, .. } => {
                check_text("reason", reason, true).map_err(Void::Text)?;
                let member = self.members.get(org).ok_or(Void::NotAMember)?;
                if org == proposer {
                    return Err(Void::ProposesOwnRevocation);
                }
                let subject = org.to_string();
                if self.open_proposal_about(&subject).is_some() {
                    return Err(Void::MemberDecisionPending);
                }
                let eligible = members.saturating_sub(1).max(1);
                let required = self.charter.revocation.required(eligible).min(eligible);
                Ok((subject, member.name.clone(), required))
            }
            Action::Rotate {
                org, key, reason, ..
            } => {
                check_text("reason", reason, true).map_err(Void::Text)?;
                let member = self.members.get(org).ok_or(Void::NotAMember)?;
                if org == proposer {
                    return Err(Void::ProposesOwnRotation);
                }
                if self.knows_key(key) {
                    return Err(Void::KeyTaken);
                }
                let subject = org.to_string();
                if self.open_proposal_about(&subject).is_some() {
                    return Err(Void::MemberDecisionPending);
                }
                let eligible = members.saturating_sub(1).max(1);
                let required = self.charter.revocation.required(eligible).min(eligible);
                Ok((subject, member.name.clone(), required))
            }
            Action::Amend { amendment } => {
                if amendment.is_empty() {
                    return Err(Void::EmptyAmendment);
                }
                if let Some(name) = &amendment.name {
                    check_text("name", name, true).map_err(Void::Text)?;
                }
                if let Some(t) = &amendment.taxonomy {
                    check_text("taxonomy", t, true).map_err(Void::Text)?;
                }
                if self.open_proposal_about("charter").is_some() {
                    return Err(Void::AmendmentPending);
                }
                Ok((
                    "charter".into(),
                    self.charter.name.clone(),
                    self.charter.amendment.required(members),
                ))
            }
        }
    }

    fn try_decide(&mut self, index: usize, op: &LoggedOperation) {
        let proposal = &self.proposals[index];
        if proposal.approvals.len() < proposal.required {
            return;
        }
        let approved_by: Vec<OrgId> = proposal.approvals.iter().copied().collect();
        match proposal.action.clone() {
            Action::Admit { .. } => {
                // The subject is the candidate's id, checked when the proposal was read.
                if let Ok(org) = proposal.subject.parse::<OrgId>() {
                    let name = proposal.subject_name.clone();
                    self.members.insert(
                        org,
                        Member {
                            org,
                            name,
                            founder: false,
                            since: op.hash.to_string(),
                            approved_by,
                        },
                    );
                }
            }
            Action::Revoke { org, reason, keep } => {
                if let Some(member) = self.members.remove(&org) {
                    self.revoked.insert(
                        org,
                        FormerMember {
                            org,
                            name: member.name,
                            reason,
                            keep,
                            approved_by,
                        },
                    );
                }
            }
            Action::Amend { amendment } => amendment.apply_to(&mut self.charter),
            Action::Rotate { org, key, keep, .. } => {
                // The new key may have joined the network meanwhile (a concurrent
                // delegation, another rotation): then the decision has no effect.
                if self.members.contains_key(&org) && !self.knows_key(&key) {
                    self.rotate(org, key, &keep, "quorum", op);
                    // Whoever held the old key may have registered a recovery key.
                    self.recovery.remove(&org);
                }
            }
        }
        self.proposals[index].status = ProposalStatus::Decided;
        let subject = self.proposals[index].subject.clone();
        self.open_by_subject.remove(&subject);
    }

    /// Replaces `org`'s current key by `key`; the old key keeps its changes up to
    /// `keep[old]` (none if absent). A recovery key, once used, is spent.
    fn rotate(
        &mut self,
        org: OrgId,
        key: KeyId,
        keep: &BTreeMap<KeyId, u64>,
        how: &str,
        op: &LoggedOperation,
    ) {
        let old = self.own_key_of(&org);
        self.retired.insert(
            old,
            RetiredKey {
                key: old,
                org,
                keep: keep.get(&old).copied().unwrap_or(0),
                replaced_by: key,
                how: how.to_owned(),
                change: op.hash.to_string(),
            },
        );
        self.key_owner.remove(&old);
        self.org_keys.insert(org, key);
        self.key_owner.insert(key, org);
        self.recovery.remove(&org);
    }

    /// A short digest of what decides write verdicts (members, former members and their
    /// keeps, devices): when it changes, stored documents may need re-checking.
    pub fn write_rules_digest(&self) -> Vec<u8> {
        serde_json::to_vec(&(
            &self.members.keys().collect::<Vec<_>>(),
            &self.revoked,
            &self.devices,
            &self.org_keys,
            &self.retired,
        ))
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
