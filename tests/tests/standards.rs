//! The HSDS import on Open Referral's own example files (vendored in
//! `tests/data/openreferral`), not on samples written for the importer: it recognises which
//! kind of file it was given, reads the organisations it holds, and refuses a file that
//! holds none (a taxonomy, a location alone) saying what it looked like.

use std::collections::BTreeMap;

use passerelle_node::cartography::ReadError;
use passerelle_node::cartography::hsds_import::{ReadHsds, read_json, read_package};
use passerelle_node::model::LegalStatus;
use passerelle_tests::standards::openreferral;
use serde_json::Value;

fn example(name: &str) -> Value {
    let path = openreferral().join("examples").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("example")).expect("json")
}

fn read(name: &str) -> ReadHsds {
    read_json(&example(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Services read, and services reported (left out with why: Open Referral's examples are
/// American and carry no category of Passerelle's taxonomy, so no dimension).
fn services(read: &ReadHsds) -> usize {
    let reported = read
        .problems
        .iter()
        .filter(|p| p.entity == "service")
        .inspect(|p| assert!(!p.id.is_empty() && !p.why.is_empty(), "{p:?}"))
        .count();
    read.organisations
        .iter()
        .map(|o| o.entries.services.len())
        .sum::<usize>()
        + reported
}

#[test]
fn an_organization_is_read_whole_and_its_free_text_legal_status_mapped() {
    let read = read("organization_full.json");
    assert_eq!(read.organisations.len(), 1, "{read:?}");
    let org = &read.organisations[0];
    assert_eq!(org.name, example("organization_full.json")["name"]);
    // "Limited Company": a private firm, not an error that drops the organisation.
    assert_eq!(org.entries.legal_status, Some(LegalStatus::Private));
    // Its service is read, or reported with its id and why; never lost unsaid.
    assert_eq!(
        services(&read),
        example("organization_full.json")["services"]
            .as_array()
            .expect("services")
            .len()
    );
}

#[test]
fn a_list_of_organizations_is_read_page_and_all() {
    let list = example("organization_list.json");
    let read = read("organization_list.json");
    assert_eq!(
        read.organisations.len(),
        list["contents"].as_array().expect("contents").len()
    );
}

#[test]
fn a_service_is_read_under_its_nested_organization() {
    let service = example("service_full.json");
    let read = read("service_full.json");
    assert_eq!(read.organisations.len(), 1, "{read:?}");
    assert_eq!(read.organisations[0].name, service["organization"]["name"]);
    assert_eq!(services(&read), 1, "{read:?}");
    assert!(
        read.organisations[0]
            .entries
            .services
            .values()
            .any(|s| s.name == service["name"])
            || read.problems.iter().any(|p| p.id == service["id"]),
        "{read:?}"
    );

    let read = self::read("service_list.json");
    let listed = example("service_list.json")["contents"]
        .as_array()
        .expect("contents")
        .len();
    assert!(!read.organisations.is_empty());
    assert_eq!(services(&read), listed, "{read:?}");
}

#[test]
fn a_service_at_a_location_brings_its_organization_service_and_office() {
    let at = example("service_at_location_full.json");
    let read = read("service_at_location_full.json");
    assert_eq!(read.organisations.len(), 1, "{read:?}");
    let org = &read.organisations[0];
    assert_eq!(org.name, at["service"]["organization"]["name"]);
    assert_eq!(services(&read), 1, "{read:?}");
    // The location came with it: read as an office, or reported (its state is American).
    assert!(
        !org.entries.offices.is_empty() || read.problems.iter().any(|p| p.entity == "location"),
        "{read:?}"
    );
    let read = self::read("service_at_location_list.json");
    assert!(!read.organisations.is_empty(), "{read:?}");
}

#[test]
fn a_file_that_holds_no_organisation_is_refused_saying_what_it_looked_like() {
    for (file, looked) in [("taxonomy.json", "taxonomy"), ("location.json", "location")] {
        match read_json(&example(file)) {
            Err(ReadError::NotHsds(why)) => {
                assert!(why.contains(looked), "{file}: {why}");
                assert!(why.contains("service_at_location"), "{file}: {why}");
            }
            other => panic!("{file} was read: {other:?}"),
        }
    }
}

#[test]
fn open_referrals_tabular_example_is_read() {
    let dir = openreferral().join("examples/csv");
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("examples") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "csv") {
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            files.insert(name, std::fs::read_to_string(&path).expect("csv"));
        }
    }
    let read = read_package(&files).expect("the package");
    assert!(!read.organisations.is_empty(), "{read:?}");
    assert!(services(&read) >= 1, "{read:?}");
}
