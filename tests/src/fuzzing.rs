//! Fuzz targets: every decoder that takes bytes from outside the node, each as a function
//! that must not panic, hang or allocate without bound whatever the bytes. The cargo-fuzz
//! crate (`tests/fuzz`, libFuzzer) calls them; on stable, the test
//! `fuzz_targets_hold_on_their_corpus_and_random_inputs` runs each over its corpus
//! (`tests/fuzz/corpus/<target>/`, plus [`seeds`]) and a bounded number of mutations of it,
//! so a regression fails CI.
//!
//! Besides not panicking, targets check what must hold of what decodes: a signed change
//! that decodes encodes back to the same bytes; a request that decodes is within the
//! protocol's bounds once the node's own checks pass.

use std::collections::BTreeMap;

use futures::executor::block_on;
use libp2p::request_response::Codec as _;
use libp2p::request_response::cbor::codec::Codec;
use passerelle_node::envelope::SignedChange;
use passerelle_node::keys::KeyFiles;
use passerelle_node::protocol::{
    ADMISSION_PROTOCOL, AdmissionMessage, AdmissionReply, CASE_PROTOCOL, CaseMessage, CaseReply,
    MAX_ADMISSION_BYTES, MAX_CASE_BYTES, MAX_SYNC_REQUEST_BYTES, MAX_SYNC_RESPONSE_BYTES,
    SYNC_PROTOCOL, SyncRequest, SyncResponse,
};

/// The panic hook for libFuzzer runs: a panic that `automerge_guard` catches (and turns into
/// a refusal, as the node does) is not a crash; any other aborts, for libFuzzer to report.
pub fn panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        if passerelle_node::automerge_guard::inside_guard() {
            return;
        }
        eprintln!("{info}");
        eprintln!("{}", std::backtrace::Backtrace::force_capture());
        std::process::abort();
    }));
}

/// A fuzz target: bytes in, nothing out but a panic when something is wrong.
pub type Target = fn(&[u8]);

/// Every target, by name (the name of its cargo-fuzz target and corpus folder).
pub const TARGETS: &[(&str, Target)] = &[
    ("envelope", envelope),
    ("apply", apply),
    ("sync_request", sync_request),
    ("sync_response", sync_response),
    ("admission", admission),
    ("case_message", case_message),
    ("automerge_document", automerge_document),
    ("backup", backup),
    ("import_csv", import_csv),
    ("import_xlsx", import_xlsx),
    ("import_hsds", import_hsds),
    ("control_request", control_request),
    ("config", config),
];

/// A signed change (the envelope), as gossip and catch-up carry it.
pub fn envelope(data: &[u8]) {
    if let Ok(change) = SignedChange::decode(data) {
        assert_eq!(
            change.encode(),
            data,
            "decode then encode changes the bytes"
        );
        let _ = change.verify();
    }
}

/// Changes (envelopes cut at `0xff 0x00` marks) applied to an organisation's document and
/// read into its record, as a node does with the changes of a member gone rogue (they
/// verify, but were written outside any honest node's checks). The document starts from a
/// genesis and an edit made by the node's own code, so that changes can build on it.
pub fn apply(data: &[u8]) {
    let mut changes = Vec::new();
    for part in split(data, &[0xff, 0x00], 8) {
        if let Ok(change) = SignedChange::decode(part) {
            changes.push(change);
        }
    }
    if changes.is_empty() {
        return;
    }
    let (mut doc, _) = base_document();
    let _ = doc.apply_verified(&changes);
    let _ = doc.check_text();
}

/// An organisation's document made by the node's own code: a genesis, then a service
/// added (both changes returned), with a fixed key.
fn base_document() -> (
    passerelle_node::document::OrganisationDocument,
    Vec<SignedChange>,
) {
    use passerelle_node::document::OrganisationDocument;
    use passerelle_node::identity::SigningSecret;
    use passerelle_node::model::Profile;
    let secret = SigningSecret::from_bytes(&[7u8; 32]);
    let (mut doc, genesis) =
        OrganisationDocument::create(&secret, Profile::named("Centre Espoir"), 1).expect("doc");
    let edit = doc
        .apply_edit(
            &passerelle_node::document::Edit::AddService {
                id: "svc-fuzz".into(),
                service: crate::service("Formation en couture", "CM005"),
            },
            &secret,
            2,
        )
        .expect("edit");
    (doc, vec![genesis, edit])
}

/// A catch-up request, through the network's own codec and bounds.
pub fn sync_request(data: &[u8]) {
    let mut codec = Codec::<SyncRequest, SyncResponse>::default()
        .set_request_size_maximum(MAX_SYNC_REQUEST_BYTES)
        .set_response_size_maximum(MAX_SYNC_RESPONSE_BYTES);
    let mut io = futures::io::Cursor::new(data);
    if let Ok(request) =
        block_on(codec.read_request(&libp2p::StreamProtocol::new(SYNC_PROTOCOL), &mut io))
    {
        for listed in &request.documents {
            let _ = listed.document.organisation_owner();
            let _ = listed.document.network_owner();
        }
    }
}

/// A catch-up response: its changes and its whole documents, checked as a node checks them
/// before anything is stored.
pub fn sync_response(data: &[u8]) {
    let mut codec = Codec::<SyncRequest, SyncResponse>::default()
        .set_request_size_maximum(MAX_SYNC_REQUEST_BYTES)
        .set_response_size_maximum(MAX_SYNC_RESPONSE_BYTES);
    let mut io = futures::io::Cursor::new(data);
    if let Ok(response) =
        block_on(codec.read_response(&libp2p::StreamProtocol::new(SYNC_PROTOCOL), &mut io))
    {
        for change in &response.changes {
            envelope(change);
        }
        for bundle in &response.documents {
            automerge_document(&bundle.automerge);
            for signed in &bundle.signed {
                envelope(signed);
            }
        }
    }
}

/// A candidate's admission request, as a member's node receives it.
pub fn admission(data: &[u8]) {
    let mut codec = Codec::<AdmissionMessage, AdmissionReply>::default()
        .set_request_size_maximum(MAX_ADMISSION_BYTES)
        .set_response_size_maximum(MAX_ADMISSION_BYTES);
    let mut io = futures::io::Cursor::new(data);
    if let Ok(message) =
        block_on(codec.read_request(&libp2p::StreamProtocol::new(ADMISSION_PROTOCOL), &mut io))
        && let Ok(signed) =
            serde_json::from_slice::<passerelle_node::membership::SignedRequest>(&message.request)
    {
        let _ = signed.verify();
    }
}

/// A case-file message, opened with a receiver's key as the node does.
pub fn case_message(data: &[u8]) {
    let mut codec = Codec::<CaseMessage, CaseReply>::default()
        .set_request_size_maximum(MAX_CASE_BYTES)
        .set_response_size_maximum(MAX_ADMISSION_BYTES);
    let mut io = futures::io::Cursor::new(data);
    if let Ok(CaseMessage::Deliver {
        referral,
        sender,
        sealed,
    }) = block_on(codec.read_request(&libp2p::StreamProtocol::new(CASE_PROTOCOL), &mut io))
    {
        let receiver = receiver();
        let _ = passerelle_node::referral::casefile::open(
            &sealed,
            &receiver,
            &referral,
            &sender,
            &receiver.org_id(),
        );
    }
}

fn receiver() -> passerelle_node::identity::Identity {
    static RECEIVER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let dir = RECEIVER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("passerelle-fuzz-keys-{}", std::process::id()));
        if !passerelle_node::identity::Identity::exists_in(&dir) {
            let identity = passerelle_node::identity::Identity::generate().expect("keys");
            let _ = identity.save_new(&dir);
        }
        dir.into_os_string().into_encoded_bytes()
    });
    let dir = std::path::PathBuf::from(String::from_utf8_lossy(dir).into_owned());
    passerelle_node::identity::Identity::load(&dir).expect("the fuzzing keys")
}

/// A compressed Automerge document from outside (a bundle, a backup file): bounded before
/// Automerge loads it.
pub fn automerge_document(data: &[u8]) {
    if passerelle_node::automerge_bounds::check_document(
        data,
        passerelle_node::automerge_bounds::MAX_INFLATED_DOCUMENT,
    )
    .is_ok()
        && let Ok(doc) = passerelle_node::automerge_guard::load(data)
    {
        let _ = doc.get_changes_meta(&[]);
    }
}

/// A backup (its three files, cut from the input at two `0xff 0x00` marks), read and
/// verified.
pub fn backup(data: &[u8]) {
    let parts: Vec<&[u8]> = split(data, &[0xff, 0x00], 3);
    let [heads, automerge, changes] = parts.as_slice() else {
        return;
    };
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let stem = "org-fuzz";
    let written = std::fs::write(dir.path().join(format!("{stem}.heads.json")), heads)
        .and_then(|()| std::fs::write(dir.path().join(format!("{stem}.automerge")), automerge))
        .and_then(|()| std::fs::write(dir.path().join(format!("{stem}.changes")), changes));
    if written.is_err() {
        return;
    }
    if let Ok(backup) = passerelle_node::backup::DocumentBackup::read(
        &dir.path().join(format!("{stem}.heads.json")),
    ) {
        let _ = backup.verify();
    }
}

fn split<'a>(data: &'a [u8], mark: &[u8], parts: usize) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() + 1 < parts {
        match rest.windows(mark.len()).position(|w| w == mark) {
            Some(at) => {
                out.push(&rest[..at]);
                rest = &rest[at + mark.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    out
}

/// A coordinator's spreadsheet as CSV.
pub fn import_csv(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(mapping) = passerelle_node::cartography::import::read_csv(&text, &Default::default())
    {
        let _ = passerelle_node::cartography::import::entries_of_rows(
            &mapping.rows.iter().collect::<Vec<_>>(),
        );
    }
}

/// A coordinator's workbook (.xlsx).
pub fn import_xlsx(data: &[u8]) {
    let _ = passerelle_node::cartography::import::read_workbook(data, None, &Default::default());
}

/// An HSDS 3.0 JSON file.
pub fn import_hsds(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = passerelle_node::cartography::hsds_import::read_json(&value);
    }
    // The tabular package: the input as one CSV file of each table it could be.
    let text = String::from_utf8_lossy(data).into_owned();
    let files: BTreeMap<String, String> = ["organizations.csv", "services.csv", "locations.csv"]
        .iter()
        .map(|name| ((*name).to_owned(), text.clone()))
        .collect();
    let _ = passerelle_node::cartography::hsds_import::read_package(&files);
}

/// A line on the control socket: a request as the node reads it, an answer line as the
/// client reads it.
pub fn control_request(data: &[u8]) {
    let _ = serde_json::from_slice::<passerelle_node::api::Request>(data);
    let _ = serde_json::from_slice::<passerelle_node::api::Frame>(data);
}

/// A `config.toml`.
pub fn config(data: &[u8]) {
    if let Ok(file) = passerelle_node::config::ConfigFile::parse(&String::from_utf8_lossy(data)) {
        let _ = passerelle_node::config::Config::network_from_file(&file);
    }
}

/// Valid inputs for `target`, made with the node's own code: where mutations start from.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    use passerelle_node::identity::SigningSecret;
    use passerelle_node::model::Profile;
    let secret = SigningSecret::from_bytes(&[7u8; 32]);
    let (mut doc, made) = base_document();
    let (genesis, edit) = (&made[0], &made[1]);
    let changes = vec![genesis.encode(), edit.encode()];
    let saved = {
        use passerelle_node::document::Replica;
        doc.automerge().save()
    };
    match target {
        "envelope" => changes,
        "apply" => {
            // A third change building on the two, by the same key.
            let (mut doc3, _) = base_document();
            let third = doc3
                .apply_edit(
                    &passerelle_node::document::Edit::RemoveService {
                        id: "svc-fuzz".into(),
                    },
                    &secret,
                    3,
                )
                .map(|c| c.encode())
                .unwrap_or_default();
            let mut out = changes[1].clone();
            out.extend_from_slice(&[0xff, 0x00]);
            out.extend_from_slice(&third);
            vec![out]
        }
        "sync_request" => {
            let request = SyncRequest {
                documents: vec![passerelle_node::protocol::DocumentHeads {
                    document: doc.id().clone(),
                    heads: vec![serde_bytes::ByteBuf::from(edit.hash().0.to_vec())],
                }],
                network: Some("qhpaplebnfqhg2qadrbyeiokt2refmaw".into()),
                held_back: Vec::new(),
                compact: true,
            };
            vec![encode_request::<SyncRequest, SyncResponse>(&libp2p::StreamProtocol::new(SYNC_PROTOCOL), request)]
        }
        "sync_response" => {
            let response = SyncResponse {
                changes: changes
                    .iter()
                    .map(|c| serde_bytes::ByteBuf::from(c.clone()))
                    .collect(),
                more: false,
                documents: vec![
                    passerelle_node::protocol::DocumentBundle {
                        document: doc.id().clone(),
                        automerge: serde_bytes::ByteBuf::from(saved.clone()),
                        signed: vec![serde_bytes::ByteBuf::from(edit.encode())],
                        signatures: Vec::new(),
                    },
                    // Compact: the latest change's hash and signature alone.
                    passerelle_node::protocol::DocumentBundle {
                        document: doc.id().clone(),
                        automerge: serde_bytes::ByteBuf::from(saved.clone()),
                        signed: Vec::new(),
                        signatures: vec![serde_bytes::ByteBuf::from(
                            [edit.hash().0.as_slice(), &edit.signature().expect("signed").to_bytes()].concat(),
                        )],
                    },
                ],
            };
            let mut codec = Codec::<SyncRequest, SyncResponse>::default();
            let mut out = futures::io::Cursor::new(Vec::new());
            block_on(codec.write_response(&libp2p::StreamProtocol::new(SYNC_PROTOCOL), &mut out, response)).expect("encode");
            vec![out.into_inner()]
        }
        "admission" => {
            let request = passerelle_node::membership::AdmissionRequest {
                network: "qhpaplebnfqhg2qadrbyeiokt2refmaw".parse().expect("network id"),
                org: secret.org_id(),
                name: "Centre Espoir".into(),
                message: "ONG de Douala".into(),
                created: 1,
            };
            let signed = passerelle_node::membership::SignedRequest::sign(&request, &secret)
                .expect("sign");
            let message = AdmissionMessage {
                request: serde_bytes::ByteBuf::from(serde_json::to_vec(&signed).expect("json")),
            };
            vec![encode_request::<AdmissionMessage, AdmissionReply>(
                &libp2p::StreamProtocol::new(ADMISSION_PROTOCOL),
                message,
            )]
        }
        "case_message" => {
            let sealed = passerelle_node::referral::casefile::Sealed {
                ephemeral: vec![9u8; 32],
                nonce: vec![1u8; 12],
                ciphertext: vec![2u8; 80],
            };
            let message = CaseMessage::Deliver {
                referral: "ref-0123456789abcdef01234567".into(),
                sender: secret.org_id(),
                sealed,
            };
            vec![encode_request::<CaseMessage, CaseReply>(&libp2p::StreamProtocol::new(CASE_PROTOCOL), message)]
        }
        "automerge_document" => vec![saved],
        "backup" => {
            let backup = passerelle_node::backup::DocumentBackup::build(
                doc.id().clone(),
                changes,
                &secret,
                3,
            )
            .expect("backup");
            let dir = tempfile::tempdir().expect("dir");
            backup.write(dir.path()).expect("write");
            let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir.path())
                .expect("list")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            files.sort_by_key(|p| {
                let name = p.to_string_lossy().into_owned();
                (!name.ends_with("heads.json"), !name.ends_with(".automerge"))
            });
            let mut out = Vec::new();
            for (i, file) in files.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(&[0xff, 0x00]);
                }
                out.extend_from_slice(&std::fs::read(file).expect("read"));
            }
            vec![out]
        }
        "import_csv" => vec![
            b"organisation,sigle,type,service,dimension,categorie,region,departement,ville,cout,capacite\n\
              ONG Avenir,ONGA,ong,\xc3\x89coute,psychosociale,counselling,CM010,CM010001,Buea,gratuit,disponible\n"
                .to_vec(),
        ],
        "import_xlsx" => {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../docs/examples/mapping.xlsx");
            std::fs::read(path).map(|b| vec![b]).unwrap_or_default()
        }
        "import_hsds" => {
            let record = passerelle_node::model::OrganisationRecord::new(
                secret.org_id().to_string(),
                Profile::named("Centre Espoir"),
            );
            let hsds = passerelle_node::cartography::hsds::organization(
                &record,
                passerelle_node::reference::Lang::Fr,
            );
            vec![serde_json::to_vec(&hsds).unwrap_or_default()]
        }
        "control_request" => vec![
            br#"{"request":"status"}"#.to_vec(),
            br#"{"request":"search","query":{"region":"CM005","text":"formation"}}"#.to_vec(),
            br#"{"request":"edit","edit":{"edit":"set_profile","patch":{"name":"X"}}}"#.to_vec(),
            br#"{"request":"board","filter":{"incoming":true,"limit":5}}"#.to_vec(),
            br#"{"head":{"total":1}}"#.to_vec(),
            br#"{"end":{"count":2}}"#.to_vec(),
        ],
        "config" => vec![
            passerelle_node::config::ConfigFile::template("Centre Espoir").into_bytes(),
        ],
        _ => Vec::new(),
    }
}

fn encode_request<Req, Resp>(protocol: &libp2p::StreamProtocol, request: Req) -> Vec<u8>
where
    Req: Send + serde::Serialize + serde::de::DeserializeOwned,
    Resp: Send + serde::Serialize + serde::de::DeserializeOwned,
{
    let mut codec = Codec::<Req, Resp>::default();
    let mut out = futures::io::Cursor::new(Vec::new());
    block_on(codec.write_request(protocol, &mut out, request)).expect("encode");
    out.into_inner()
}

/// A mutation of `input` (bit flips, bytes replaced, cut, repeated, spliced): what a
/// fuzzer's first steps do, for the bounded stable run.
pub fn mutate(input: &[u8], rng: &mut impl rand::Rng) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = out.len();
        match rng.random_range(0..6) {
            0 if len > 0 => {
                let at = rng.random_range(0..len);
                out[at] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let at = rng.random_range(0..len);
                out[at] = [0u8, 0xff, 0x7f, 0x80, b'"', b'\n'][rng.random_range(0..6)];
            }
            2 if len > 1 => out.truncate(rng.random_range(0..len)),
            3 if len > 0 => {
                let start = rng.random_range(0..len);
                let end = rng.random_range(start..=len.min(start + 64));
                let piece = out[start..end].to_vec();
                let at = rng.random_range(0..=len);
                out.splice(
                    at..at,
                    piece
                        .iter()
                        .copied()
                        .cycle()
                        .take(piece.len() * rng.random_range(1..8)),
                );
            }
            4 => {
                let at = rng.random_range(0..=len);
                let junk: Vec<u8> = (0..rng.random_range(1..16)).map(|_| rng.random()).collect();
                out.splice(at..at, junk);
            }
            _ if len > 0 => {
                let at = rng.random_range(0..len);
                out.remove(at);
            }
            _ => out.push(rng.random()),
        }
    }
    out
}
