//! What several commands share in their arguments: value parsers that name what is
//! accepted, the contact flags, and JSON objects given on the command line.

use anyhow::bail;
use clap::Args;
use passerelle_node::membership::Quorum;
use passerelle_node::model::{CapacityStatus, Contact, Cost, LegalStatus, ServiceStatus};
use passerelle_node::reference::taxonomy::Dimension;
use passerelle_node::referral::board::Priority;
use passerelle_node::referral::casefile::ConsentMethod;
use passerelle_node::referral::lifecycle::{Outcome, Reason, Status};
use serde_json::{Map, Value};

use crate::messages::said;

/// Contact flags shared by several commands.
#[derive(Debug, Args, Default)]
pub struct ContactArgs {
    /// Contact person or desk.
    #[arg(long)]
    pub contact_name: Option<String>,
    /// Contact e-mail.
    #[arg(long)]
    pub contact_email: Option<String>,
    /// Contact phone (+237…).
    #[arg(long)]
    pub contact_phone: Option<String>,
}

pub fn contact(contact: &ContactArgs) -> Option<Contact> {
    let contact = Contact {
        name: contact.contact_name.clone(),
        email: contact.contact_email.clone(),
        phone: contact.contact_phone.clone(),
        title: None,
    };
    (contact != Contact::default()).then_some(contact)
}

pub fn parse_json_object(what: &str, text: &str) -> anyhow::Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => bail!("{what}: expected a JSON object like {{\"field\": value}}"),
        Err(e) => bail!("{what}: not valid JSON: {e}"),
    }
}

pub fn parse_quorum(text: &str) -> Result<Quorum, String> {
    text.parse()
        .map_err(|e: passerelle_node::membership::MembershipError| said(e.to_string(), e.fr()))
}

/// A whole number, 0 or more.
pub fn parse_count<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.trim().parse::<T>().map_err(|_| {
        said(
            format!("{s:?} is not a whole number of 0 or more (e.g. 12)"),
            format!("{s:?} n'est pas un nombre entier de 0 ou plus (par ex. 12)"),
        )
    })
}

/// A whole number, 1 or more.
pub fn parse_positive(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(said(
            format!("{s:?} is not a whole number of 1 or more (e.g. 100)"),
            format!("{s:?} n'est pas un nombre entier de 1 ou plus (par ex. 100)"),
        )),
    }
}

/// A number of degrees (decimal, WGS 84).
pub fn parse_degrees(s: &str) -> Result<f64, String> {
    match s.trim().replace(',', ".").parse::<f64>() {
        Ok(d) if d.is_finite() => Ok(d),
        _ => Err(said(
            format!("{s:?} is not a number of degrees (decimal, e.g. 4.0483 or -9.7043)"),
            format!("{s:?} n'est pas un nombre de degrés (décimal, par ex. 4,0483 ou -9.7043)"),
        )),
    }
}

pub fn parse_dimension(s: &str) -> Result<Dimension, String> {
    s.parse()
}

pub fn parse_cost(s: &str) -> Result<Cost, String> {
    s.parse()
}

pub fn parse_capacity(s: &str) -> Result<CapacityStatus, String> {
    s.parse()
}

pub fn parse_service_status(s: &str) -> Result<ServiceStatus, String> {
    s.parse()
}

pub fn parse_legal_status(s: &str) -> Result<LegalStatus, String> {
    s.parse()
}

pub fn parse_reason(text: &str) -> Result<Reason, String> {
    text.replace('-', "_").parse()
}

pub fn parse_outcome(text: &str) -> Result<Outcome, String> {
    text.replace('-', "_").parse()
}

pub fn parse_status(text: &str) -> Result<Status, String> {
    text.parse()
}

pub fn parse_priority(text: &str) -> Result<Priority, String> {
    text.parse()
}

pub fn parse_consent_method(text: &str) -> Result<ConsentMethod, String> {
    text.parse()
}

pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| {
        said(
            format!("{text:?} is not a duration such as 48h, 7d or 2weeks ({e})"),
            format!("{text:?} n'est pas une durée comme 48h, 7d ou 2weeks ({e})"),
        )
    })
}

/// A calendar date `YYYY-MM-DD` as Unix seconds (midnight UTC).
pub fn parse_date(text: &str) -> Result<i64, String> {
    let time =
        humantime::parse_rfc3339_weak(&format!("{} 00:00:00", text.trim())).map_err(|_| {
            said(
                format!("{text:?} is not a date written YYYY-MM-DD"),
                format!("{text:?} n'est pas une date écrite AAAA-MM-JJ"),
            )
        })?;
    time.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .map_err(|_| {
            said(
                format!("{text:?} is before 1970"),
                format!("{text:?} est avant 1970"),
            )
        })
}

pub fn parse_lang(text: &str) -> Result<passerelle_node::reference::Lang, String> {
    text.parse()
}
