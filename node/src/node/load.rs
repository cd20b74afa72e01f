//! Creating a data folder, and loading the documents actor from the store: from the
//! snapshots, or rebuilt from every signed change (`--verify-store`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, info, warn};

use super::{DocumentsActor, NodeError, StartReport, io, replication};
use crate::config::Config;
use crate::document::{DocumentError, Edit, OrganisationDocument, Replica};
use crate::envelope::DocumentId;
use crate::envelope::SignedChange;
use crate::identity::{Identity, OrgId};
use crate::keys::KeyFiles;
use crate::membership::NetworkDocument;
use crate::model::Profile;
use crate::store::{Snapshot, Store, StoreError};

/// A document's snapshot, and the document read from it.
type LoadedSnapshot = (Snapshot, Result<OrganisationDocument, DocumentError>);

impl DocumentsActor {
    pub(super) fn load(config: Config) -> Result<Self, NodeError> {
        let opening = Instant::now();
        let identity = Identity::load_with(&config.data_dir, config.passphrase.as_ref())?;
        let store = Store::open(&config.store_dir())?;
        let vault = crate::vault::Vault::open(
            &store,
            &config.data_dir,
            crate::identity::SigningSecret::from_bytes(&identity.signing().to_secret_bytes()),
        )?
        .with_erasure_journal(config.backup_dir.clone());
        let open_ms = opening.elapsed().as_millis() as u64;
        let started = Instant::now();
        let counts = if config.verify_store {
            None
        } else {
            store.change_counts()?
        };
        // The network document (its changes verified and folded) is read beside the
        // organisation documents: neither needs the other.
        let (network, loaded) = std::thread::scope(|scope| {
            let network = scope.spawn(|| load_network(&store));
            let loaded = match counts {
                Some(counts) => load_from_snapshots(&store, counts),
                None => load_everything(&store),
            };
            (network.join(), loaded)
        });
        let network =
            network.map_err(|_| NodeError::Panicked("loading the network document"))??;
        let loaded = loaded?;
        if let Some(stray) = loaded.stray_network {
            return Err(StoreError::Corrupt {
                key: stray.to_string(),
                reason: "a network document other than this node's network".into(),
            }
            .into());
        }
        let (documents, change_counts) = (loaded.documents, loaded.change_counts);
        let start = StartReport {
            from_snapshots: loaded.from_snapshots,
            rebuilt: documents.len() - loaded.from_snapshots,
            load_ms: started.elapsed().as_millis() as u64,
            open_ms,
        };
        info!(
            documents = documents.len(),
            from_snapshots = start.from_snapshots,
            rebuilt = start.rebuilt,
            load_ms = start.load_ms,
            open_ms = start.open_ms,
            "store loaded"
        );
        // A rebuilt document gets a fresh snapshot (at the next one due, or at shutdown),
        // so that the next start takes it from there.
        let since_snapshot = loaded.stale.into_iter().map(|owner| (owner, 1)).collect();
        let device_of = store.device_of()?;
        let own = device_of.unwrap_or_else(|| identity.org_id());
        // A device node receives its organisation's document from the network; so does a
        // node whose own document `passerelle repair` set aside.
        let awaited = store.own_document_awaited()?;
        if awaited && documents.contains_key(&own) {
            store.set_own_document_awaited(false)?;
        }
        if device_of.is_none() && !documents.contains_key(&own) && !awaited {
            return Err(StoreError::Corrupt {
                key: DocumentId::organisation(&own).to_string(),
                reason: "the store holds no document for this node's organisation (was `passerelle init` interrupted?)".into(),
            }
            .into());
        }
        let mut actor = Self {
            config,
            own,
            identity: Arc::new(identity),
            store,
            documents,
            change_counts,
            since_snapshot,
            start,
            started: Instant::now(),
            pending: replication::Pending::default(),
            rejected_changes: 0,
            documents_received_whole: 0,
            rejected_by_code: BTreeMap::new(),
            network,
            outbound: None,
            members: None,
            members_published: None,
            store_check: Default::default(),
            vault,
            case_files_refused: 0,
            board_index: Default::default(),
        };
        // A crash between a revocation and the cut of the revoked member's documents is
        // finished here.
        actor.enforce_write_rules();
        Ok(actor)
    }
}

/// Creates a data folder: keys, store and the organisation's signed genesis document.
/// Refuses a folder that already holds an identity.
pub fn initialise(config: &Config, profile: Profile) -> Result<OrgId, NodeError> {
    let identity = Identity::generate()?;
    let now = crate::unix_now();
    let (mut document, genesis) = OrganisationDocument::create(identity.signing(), profile, now)?;
    // The key case files are sealed to, published in the signed document.
    let key = document.apply_edit(
        &Edit::SetEncryptionKey {
            key: identity.encryption_public_key(),
        },
        identity.signing(),
        now,
    )?;
    let store = create_data_folder(config, &identity)?;
    store.put_changes(&[genesis, key])?;
    let snapshot = document.snapshot();
    store.put_snapshot(document.id(), &snapshot)?;
    Ok(identity.org_id())
}

/// Creates the data folder of a **device node**: another node of organisation `org` (a
/// regional office), with its own key, writing `org`'s document once `org` has authorised
/// the key (`passerelle device add`). Returns the device's key id.
pub fn initialise_device(config: &Config, org: OrgId) -> Result<OrgId, NodeError> {
    let identity = Identity::generate()?;
    let store = create_data_folder(config, &identity)?;
    store.set_device_of(&org)?;
    Ok(identity.org_id())
}

/// Records the public half of the offline recovery key made at `init` (the node must be
/// stopped): the node registers it in the network document once its organisation is a
/// member.
pub fn remember_recovery_key(
    config: &Config,
    key: &crate::identity::KeyId,
) -> Result<(), NodeError> {
    let store = Store::open(&config.store_dir())?;
    store.set_recovery_pending(Some(key))?;
    Ok(())
}

/// Makes the data folder (mode 0700), an empty store and the key files; refuses a folder
/// that already holds an identity or a store with changes.
pub(super) fn create_data_folder(config: &Config, identity: &Identity) -> Result<Store, NodeError> {
    let dir = &config.data_dir;
    if Identity::exists_in(dir) {
        return Err(NodeError::AlreadyInitialised(dir.clone()));
    }
    fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(io(format!("setting permissions of {}", dir.display())))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::durable::sync_dir(parent).map_err(io(format!("syncing {}", parent.display())))?;
    }
    let store = Store::create(&config.store_dir())?;
    if store.change_count() > 0 {
        return Err(NodeError::AlreadyInitialised(dir.clone()));
    }
    identity.save_new_with(dir, config.passphrase.as_ref())?;
    Ok(store)
}

/// The network document, from its stored changes (verified).
pub(super) fn load_network(store: &Store) -> Result<Option<NetworkDocument>, NodeError> {
    let Some(id) = store.network()? else {
        return Ok(None);
    };
    let mut network = NetworkDocument::empty(id);
    let held = store.load_document(&id.document_id())?;
    let (ordered, missing) = replication::release_in_order(held, |_| false);
    if !missing.is_empty() {
        return Err(StoreError::Corrupt {
            key: id.document_id().to_string(),
            reason: format!("{} network changes miss a dependency", missing.len()),
        }
        .into());
    }
    for change in &ordered {
        network
            .apply_unfolded(change)
            .map_err(|e| StoreError::Corrupt {
                key: id.document_id().to_string(),
                reason: e.to_string(),
            })?;
    }
    network.refold();
    Ok(Some(network))
}

/// The organisation documents a store holds, as the documents actor keeps them.
pub(super) struct LoadedDocuments {
    documents: BTreeMap<OrgId, OrganisationDocument>,
    change_counts: HashMap<OrgId, usize>,
    /// How many were taken from a sufficient snapshot.
    from_snapshots: usize,
    /// The documents whose snapshot is missing or behind their stored changes.
    stale: Vec<OrgId>,
    /// A network document other than the node's own, if the store holds one.
    stray_network: Option<DocumentId>,
}

impl LoadedDocuments {
    fn new(stray_network: Option<DocumentId>) -> Self {
        Self {
            documents: BTreeMap::new(),
            change_counts: HashMap::new(),
            from_snapshots: 0,
            stale: Vec::new(),
            stray_network,
        }
    }
}

/// Fast start: each document whose snapshot holds as many changes as the store counts for
/// it is taken from the snapshot (record as saved, Automerge loaded when first needed);
/// the others are rebuilt from their verified signed changes. Spread over the cores.
pub(super) fn load_from_snapshots(
    store: &Store,
    counts: BTreeMap<DocumentId, u64>,
) -> Result<LoadedDocuments, NodeError> {
    let own_network = store.network()?.map(|n| n.document_id());
    let mut stray_network = None;
    let mut work = Vec::new();
    for (id, count) in counts {
        if id.network_owner().is_some() {
            if Some(&id) != own_network.as_ref() && count > 0 {
                stray_network = Some(id);
            }
            continue;
        }
        let Some(owner) = id.organisation_owner() else {
            return Err(StoreError::Corrupt {
                key: format!("change-counts/{id}"),
                reason: "not an organisation document".into(),
            }
            .into());
        };
        if count > 0 {
            work.push((id, owner, count));
        }
    }
    type Done = (OrgId, OrganisationDocument, usize, bool);
    // Each snapshot is read and parsed by the thread that takes its document, one at a
    // time, so that the store's snapshots are never all in memory at once.
    let load_one = |(id, owner, count): (DocumentId, OrgId, u64)| -> Result<Done, NodeError> {
        if let Some(snapshot) = store.snapshot_record(&id)? {
            if snapshot.changes == count {
                match OrganisationDocument::from_sufficient_snapshot(
                    owner,
                    snapshot,
                    Arc::new(store.clone()),
                ) {
                    Ok(document) => return Ok((owner, document, count as usize, true)),
                    Err(e) => {
                        warn!(document = %id, error = %e, "snapshot unreadable; rebuilding from the signed changes")
                    }
                }
            } else {
                debug!(document = %id, snapshot = snapshot.changes, stored = count, "snapshot behind the store; rebuilding from the signed changes");
            }
        }
        let changes = store.load_document(&id)?;
        let document = rebuild(&id, &changes, None)?;
        Ok((owner, document, changes.len(), false))
    };
    let results: Vec<Result<Done, NodeError>> = crate::parallel::map(work, load_one);
    let mut loaded = LoadedDocuments::new(stray_network);
    let mut recounted = Vec::new();
    for result in results {
        let (owner, document, count, from_snapshot) = result?;
        if from_snapshot {
            loaded.from_snapshots += 1;
        } else {
            recounted.push((document.id().clone(), count as u64));
            loaded.stale.push(owner);
        }
        loaded.change_counts.insert(owner, count);
        loaded.documents.insert(owner, document);
    }
    // A count a crash left ahead of the changes is set right.
    store.set_change_counts(recounted.iter().map(|(id, n)| (id, *n)), false)?;
    Ok(loaded)
}

/// Full check (`--verify-store`, or a store from before change counts were kept): every
/// stored change decoded and verified, every document rebuilt from its snapshot and
/// changes; then the change counts are recorded.
pub(super) fn load_everything(store: &Store) -> Result<LoadedDocuments, NodeError> {
    // Two independent halves, one per core: decode and verify every signed change, and
    // load the snapshots into Automerge.
    let (changes, snapshots) = std::thread::scope(|scope| {
        let snapshots = scope.spawn(|| load_snapshots(store));
        let changes = store.load_changes();
        (changes, snapshots.join())
    });
    let mut changes = changes?;
    let own_network = store.network()?.map(|n| n.document_id());
    let network_count = own_network
        .as_ref()
        .and_then(|id| changes.remove(id))
        .map(|c| c.len());
    let stray_network = changes
        .keys()
        .find(|id| id.network_owner().is_some())
        .cloned();
    let mut snapshots = match snapshots {
        Ok(loaded) => loaded?,
        Err(_) => {
            warn!("loading snapshots failed; rebuilding every document from its changes");
            HashMap::new()
        }
    };
    let mut loaded = LoadedDocuments::new(stray_network);
    let mut counts = Vec::new();
    for (id, changes) in changes {
        if id.network_owner().is_some() {
            continue;
        }
        let count = changes.len();
        let snapshot = snapshots.remove(&id);
        let sufficient = snapshot
            .as_ref()
            .is_some_and(|(s, d)| d.is_ok() && s.changes == count as u64);
        let document = rebuild(&id, &changes, snapshot)?;
        counts.push((id, count as u64));
        if !sufficient {
            loaded.stale.push(document.owner());
        }
        loaded.change_counts.insert(document.owner(), count);
        loaded.documents.insert(document.owner(), document);
    }
    if let (Some(id), Some(count)) = (own_network, network_count) {
        counts.push((id, count as u64));
    }
    store.set_change_counts(counts.iter().map(|(id, n)| (id, *n)), true)?;
    Ok(loaded)
}

/// Reads every snapshot and loads it into Automerge.
pub(super) fn load_snapshots(
    store: &Store,
) -> Result<HashMap<DocumentId, LoadedSnapshot>, StoreError> {
    Ok(store
        .load_snapshots()?
        .into_iter()
        .filter_map(|(id, snapshot)| {
            let owner = id.organisation_owner()?;
            let document = OrganisationDocument::from_snapshot(owner, &snapshot.document);
            Some((id, (snapshot, document)))
        })
        .collect())
}

/// Builds a document from what the store holds: the snapshot if any, then every stored
/// change it lacks. Checks that nothing is missing and that the snapshot holds no change
/// without a signed record.
pub(super) fn rebuild(
    id: &DocumentId,
    changes: &[SignedChange],
    snapshot: Option<LoadedSnapshot>,
) -> Result<OrganisationDocument, NodeError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: id.to_string(),
        reason,
    };
    let owner = id
        .organisation_owner()
        .ok_or_else(|| corrupt("not an organisation document".into()))?;
    let signed: HashSet<_> = changes.iter().map(|c| c.hash()).collect();
    let (mut document, snapshot) = match snapshot {
        Some((snapshot, Ok(mut document))) => {
            if let Some(head) = document.heads().into_iter().find(|h| !signed.contains(h)) {
                return Err(corrupt(format!(
                    "the snapshot holds change {head}, which has no signed record"
                ))
                .into());
            }
            (document, Some(snapshot))
        }
        Some((_, Err(e))) => {
            warn!(document = %id, error = %e, "snapshot unreadable; rebuilding from the signed changes");
            (OrganisationDocument::empty(owner), None)
        }
        None => (OrganisationDocument::empty(owner), None),
    };
    let missing: Vec<_> = changes
        .iter()
        .filter(|c| !document.has_change(&c.hash()))
        .cloned()
        .collect();
    match snapshot {
        Some(snapshot) if missing.is_empty() => document.restore_record(&snapshot),
        _ => document.apply_verified(&missing),
    }
    .map_err(|e| corrupt(e.to_string()))?;
    let held = document.change_count();
    if held != changes.len() {
        return Err(corrupt(format!(
            "{} signed changes are stored but only {held} could be applied (a dependency is missing)",
            changes.len()
        ))
        .into());
    }
    Ok(document)
}
