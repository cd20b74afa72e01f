//! Typed changes to some fields of a profile, an office or a service.
//!
//! A patch names each field it changes as the record does, so a caller (the CLI, the web
//! page) builds a change as a value the compiler checks, not as string-keyed JSON.
//! Serialized, a patch is the shallow merge patch an [`crate::document::Edit`] carries on
//! the wire ([`super::merge_patch`]): a field left `None` is not changed; for an optional
//! field, `Some(None)` clears it (`null`); a list given replaces the whole list.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Capacity, Contact, Cost, LegalStatus, ServiceArea, ServiceStatus};
use crate::reference::taxonomy::Dimension;

/// A typed change to some fields of a record.
pub trait Patch: Serialize {
    /// The merge patch: one key per field changed.
    fn into_map(self) -> Map<String, Value>
    where
        Self: Sized,
    {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            // A struct of plain fields always serializes to an object.
            _ => Map::new(),
        }
    }

    /// True when it changes nothing.
    fn is_empty(&self) -> bool {
        matches!(serde_json::to_value(self), Ok(Value::Object(map)) if map.is_empty())
    }
}

/// Fields of an organisation's profile to change.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProfilePatch {
    /// Official name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Acronym (`Some(None)` clears it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acronym: Option<Option<String>>,
    /// What the organisation does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Option<String>>,
    /// Legal status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legal_status: Option<Option<LegalStatus>>,
    /// Parent organisation (its id or name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_organisation: Option<Option<String>>,
    /// Contacts (the whole list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<Contact>>,
    /// Working languages (the whole list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub languages: Option<Vec<String>>,
    /// Web site.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website: Option<Option<String>>,
}

impl Patch for ProfilePatch {}

/// Fields of an office to change.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OfficePatch {
    /// Name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Region P-code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Department P-code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<Option<String>>,
    /// Town or city.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub town: Option<String>,
    /// Street address or directions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Option<String>>,
    /// Latitude (WGS 84 degrees).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latitude: Option<Option<f64>>,
    /// Longitude (WGS 84 degrees).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longitude: Option<Option<f64>>,
}

impl Patch for OfficePatch {}

/// Fields of a service to change (or, all required ones given, a new service).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServicePatch {
    /// Name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Option<String>>,
    /// Economic, social or psychosocial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimension: Option<Dimension>,
    /// Category codes (the whole list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// Who may use it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eligibility: Option<Option<String>>,
    /// What it costs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    /// Whether it can take people now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
    /// Languages (the whole list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub languages: Option<Vec<String>>,
    /// Where it is offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_area: Option<ServiceArea>,
    /// Offices where it is delivered (the whole list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offices: Option<Vec<String>>,
    /// Days and hours, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Option<String>>,
    /// Documents a beneficiary must bring (the whole list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_documents: Option<Vec<String>>,
    /// Who to contact about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<Option<Contact>>,
    /// Active, inactive or temporarily closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ServiceStatus>,
}

impl Patch for ServicePatch {}

#[cfg(test)]
mod tests {
    use super::super::{Office, Profile, Service, decode_json, merge_patch};
    use super::*;
    use crate::model::CapacityStatus;

    fn applied<T: serde::de::DeserializeOwned>(patch: impl Patch) -> T {
        let merged = merge_patch(&Value::Object(Map::new()), &patch.into_map());
        decode_json("record", merged).expect("the patch's fields are the record's")
    }

    #[test]
    fn every_field_of_a_patch_is_the_records_field_of_that_name() {
        let contact = Contact {
            name: Some("Guichet".into()),
            email: Some("guichet@example.cm".into()),
            ..Default::default()
        };
        let profile: Profile = applied(ProfilePatch {
            name: Some("ONG Avenir".into()),
            acronym: Some(Some("OA".into())),
            description: Some(Some("Réinsertion".into())),
            legal_status: Some(Some(LegalStatus::Ngo)),
            parent_organisation: Some(Some("Ministère".into())),
            contacts: Some(vec![contact.clone()]),
            languages: Some(vec!["fr".into()]),
            website: Some(Some("https://avenir.example.cm".into())),
        });
        assert_eq!(profile.acronym.as_deref(), Some("OA"));
        assert_eq!(profile.legal_status, Some(LegalStatus::Ngo));
        assert_eq!(profile.contacts, vec![contact.clone()]);
        assert_eq!(
            profile.website.as_deref(),
            Some("https://avenir.example.cm")
        );

        let office: Office = applied(OfficePatch {
            name: Some("Antenne".into()),
            region: Some("CM005".into()),
            department: Some(Some("CM005004".into())),
            town: Some("Douala".into()),
            address: Some(Some("Bonabéri".into())),
            latitude: Some(Some(4.05)),
            longitude: Some(Some(9.7)),
        });
        assert_eq!(office.department.as_deref(), Some("CM005004"));
        assert_eq!(office.longitude, Some(9.7));

        let service: Service = applied(ServicePatch {
            name: Some("Couture".into()),
            description: Some(Some("Formation".into())),
            dimension: Some(Dimension::Economic),
            categories: Some(vec!["vocational_training".into()]),
            eligibility: Some(Some("Tous".into())),
            cost: Some(Cost::Fee { amount_xaf: 5000 }),
            capacity: Some(Capacity {
                status: CapacityStatus::Waitlist,
                places: Some(3),
            }),
            languages: Some(vec!["fr".into(), "en".into()]),
            service_area: Some(ServiceArea {
                regions: vec!["CM005".into()],
                departments: vec![],
            }),
            offices: Some(vec!["off-1".into()]),
            schedule: Some(Some("lundi".into())),
            required_documents: Some(vec!["CNI".into()]),
            contact: Some(Some(contact)),
            status: Some(ServiceStatus::TemporarilyClosed),
        });
        assert_eq!(service.cost, Cost::Fee { amount_xaf: 5000 });
        assert_eq!(service.capacity.places, Some(3));
        assert_eq!(service.status, ServiceStatus::TemporarilyClosed);
        assert_eq!(service.required_documents, vec!["CNI".to_owned()]);
    }

    #[test]
    fn a_field_left_out_is_unchanged_and_some_none_clears_it() {
        assert!(ServicePatch::default().is_empty());
        let patch = OfficePatch {
            address: Some(None),
            town: Some("Kribi".into()),
            ..Default::default()
        };
        assert!(!patch.is_empty());
        let map = patch.into_map();
        assert_eq!(map.len(), 2);
        assert_eq!(map["address"], Value::Null);
        let current = serde_json::json!({"name": "A", "region": "CM010", "town": "Ebolowa", "address": "Centre"});
        let merged = merge_patch(&current, &map);
        assert_eq!(merged["town"], "Kribi");
        assert_eq!(merged["name"], "A");
        assert!(merged.get("address").is_none());
    }
}
