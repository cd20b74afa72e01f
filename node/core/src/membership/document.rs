//! The network document: the Automerge document that carries the signed log of membership
//! operations, and the membership folded from it.

use automerge::transaction::CommitOptions;
use automerge::{ActorId, AutoCommit, ChangeHash};

use super::{Charter, LoggedOperation, Membership, NetworkId, Operation};
use crate::document::Replica;
use crate::envelope::{DocumentId, SignedChange};
use crate::identity::SigningSecret;

/// Why a change of the network document is refused, or an operation cannot be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NetworkDocumentError {
    /// The change does not belong to this network.
    #[error("change {hash} belongs to another network than {network}")]
    OtherNetwork {
        /// The change.
        hash: String,
        /// This node's network.
        network: NetworkId,
    },
    /// The change is not a well-formed operation.
    #[error("change {hash} is not a membership operation: {reason}")]
    Malformed {
        /// The change.
        hash: String,
        /// Why.
        reason: String,
    },
    /// The key that signed it has no part in the network.
    #[error("{author} is not a founder, member or device of the network")]
    UnknownKey {
        /// The signing key.
        author: crate::identity::KeyId,
    },
    /// The operation would have no effect (not allowed now).
    #[error("{0}")]
    NotAllowed(String),
    /// The operation would have no effect: the rule it breaks.
    #[error("{0}")]
    Void(super::Void),
    /// The charter of a new network is refused.
    #[error("{0}")]
    Charter(super::MembershipError),
    /// Automerge refused the change, or could not read it.
    #[error("the network document refused a change: {0}")]
    Refused(#[from] crate::automerge_guard::DecodeError),
    /// Automerge made no change of the operation.
    #[error("the network document: {0}")]
    Automerge(String),
}

impl NetworkDocumentError {
    /// Why, in French, where the refusal is one a person meets (an operation the rules
    /// refuse, a network not synced yet); `None` for the others.
    pub fn fr(&self) -> Option<String> {
        match self {
            Self::Void(void) => Some(void.fr()),
            Self::Charter(e) => Some(e.fr()),
            Self::NotAllowed(reason) if reason == NO_GENESIS => {
                Some("ce nœud n'a pas encore reçu la genèse du réseau".to_owned())
            }
            _ => None,
        }
    }
}

const NO_GENESIS: &str = "this node does not hold the network's genesis yet";

/// The network document and its folded membership.
#[derive(Debug, Clone)]
pub struct NetworkDocument {
    network: NetworkId,
    id: DocumentId,
    doc: AutoCommit,
    operations: Vec<LoggedOperation>,
    membership: Option<Membership>,
    /// Operations were applied since the last fold.
    dirty: bool,
}

fn logged(change: &SignedChange) -> Result<LoggedOperation, NetworkDocumentError> {
    let hash = change.hash();
    let malformed = |reason: String| NetworkDocumentError::Malformed {
        hash: hash.to_string(),
        reason,
    };
    if !change.change().is_empty() {
        return Err(malformed(
            "it carries document operations; membership changes carry only a message".into(),
        ));
    }
    let message = change
        .change()
        .message()
        .ok_or_else(|| malformed("it has no message".into()))?;
    let operation = Operation::from_message(message).map_err(|e| malformed(e.to_string()))?;
    Ok(LoggedOperation::new(
        hash,
        change.change().deps().to_vec(),
        change.author(),
        change.change().timestamp(),
        operation,
    ))
}

impl Replica for NetworkDocument {
    fn replica_id(&self) -> &DocumentId {
        &self.id
    }

    fn automerge(&mut self) -> &mut AutoCommit {
        &mut self.doc
    }
}

impl NetworkDocument {
    /// Creates a network: the genesis (the charter) and the creator's ratification, both
    /// signed by `secret`, which must be one of the founders.
    pub fn create(
        secret: &SigningSecret,
        charter: Charter,
        now: i64,
    ) -> Result<(Self, Vec<SignedChange>), NetworkDocumentError> {
        charter.validate().map_err(NetworkDocumentError::Charter)?;
        let creator = secret.org_id();
        if !charter.founders.contains(&creator) {
            return Err(NetworkDocumentError::NotAllowed(
                "the organisation that creates a network must be one of its founders".into(),
            ));
        }
        let mut doc = AutoCommit::new().with_actor(ActorId::from(creator.as_bytes()));
        let message = Operation::Charter { charter }.to_message();
        let hash = doc.empty_change(
            CommitOptions::default()
                .with_message(message)
                .with_time(now),
        );
        let network = NetworkId::from_genesis(&hash);
        let change = doc
            .get_change_by_hash(&hash)
            .ok_or_else(|| NetworkDocumentError::Automerge("genesis produced no change".into()))?;
        let id = DocumentId::network(&network);
        let genesis = SignedChange::sign(id.clone(), change, secret);
        let mut this = Self {
            network,
            id,
            doc,
            operations: vec![logged(&genesis)?],
            membership: None,
            dirty: false,
        };
        this.refold();
        let ratify = this.append(Operation::Ratify, secret, now)?;
        Ok((this, vec![genesis, ratify]))
    }

    /// An empty network document, to fill from stored or received changes.
    pub fn empty(network: NetworkId) -> Self {
        Self {
            network,
            id: DocumentId::network(&network),
            doc: AutoCommit::new(),
            operations: Vec::new(),
            membership: None,
            dirty: false,
        }
    }

    /// The network.
    pub fn network(&self) -> NetworkId {
        self.network
    }

    /// The document id (`net/<network id>`).
    pub fn id(&self) -> &DocumentId {
        &self.id
    }

    /// The membership; `None` until the genesis is held.
    pub fn membership(&self) -> Option<&Membership> {
        self.membership.as_ref()
    }

    /// Number of operations held.
    pub fn change_count(&self) -> usize {
        self.operations.len()
    }

    /// The operations held, in the order they were applied.
    pub fn operations(&self) -> &[LoggedOperation] {
        &self.operations
    }

    /// Checks a received, signature-verified change before it is stored: it belongs to this
    /// network, is a well-formed operation, and its key has a part in the network (the
    /// genesis: it is this network's, and signed by a founder).
    pub fn check(&mut self, change: &SignedChange) -> Result<(), NetworkDocumentError> {
        if change.document() != &self.id {
            return Err(NetworkDocumentError::OtherNetwork {
                hash: change.hash().to_string(),
                network: self.network,
            });
        }
        let op = logged(change)?;
        let malformed = |reason: &str| NetworkDocumentError::Malformed {
            hash: op.hash.to_string(),
            reason: reason.into(),
        };
        if self.network.is_genesis(&op.hash) {
            let Operation::Charter { charter } = &op.operation else {
                return Err(malformed("the genesis must hold the charter"));
            };
            if !op.deps.is_empty() {
                return Err(malformed("the genesis has no dependencies"));
            }
            charter.validate().map_err(|e| malformed(&e.to_string()))?;
            if !charter.founders.contains(&op.author.as_own_org()) {
                return Err(malformed("the genesis is signed by one of the founders"));
            }
            return Ok(());
        }
        if matches!(op.operation, Operation::Charter { .. }) {
            return Err(malformed("only the genesis holds a charter"));
        }
        if self.dirty && !self.knows_key(&op.author) {
            self.refold();
        }
        if self.knows_key(&op.author) {
            Ok(())
        } else {
            Err(NetworkDocumentError::UnknownKey { author: op.author })
        }
    }

    fn knows_key(&self, key: &crate::identity::KeyId) -> bool {
        self.membership.as_ref().is_some_and(|m| m.knows_key(key))
    }

    /// Applies one already-checked change without folding the membership again (a batch
    /// of received changes folds once, at the end: call [`NetworkDocument::refold`]).
    pub fn apply_unfolded(&mut self, change: &SignedChange) -> Result<(), NetworkDocumentError> {
        let op = logged(change)?;
        crate::automerge_guard::guarded("change", || {
            self.doc
                .apply_changes([change.change().clone()])
                .map_err(|e| e.to_string())
        })
        .map_err(NetworkDocumentError::Refused)?;
        self.operations.push(op);
        self.dirty = true;
        Ok(())
    }

    /// Applies already-checked signed changes (from the store or a peer) and folds the
    /// membership again.
    pub fn apply_verified(&mut self, changes: &[SignedChange]) -> Result<(), NetworkDocumentError> {
        let mut logged_ops = Vec::with_capacity(changes.len());
        for change in changes {
            logged_ops.push(logged(change)?);
        }
        crate::automerge_guard::guarded("changes", || {
            self.doc
                .apply_changes(changes.iter().map(|c| c.change().clone()))
                .map_err(|e| e.to_string())
        })
        .map_err(NetworkDocumentError::Refused)?;
        self.operations.extend(logged_ops);
        self.refold();
        Ok(())
    }

    /// Makes, signs and applies a new operation by `secret`. Refuses (and writes nothing)
    /// when the operation would have no effect, with the reason.
    pub fn append(
        &mut self,
        operation: Operation,
        secret: &SigningSecret,
        now: i64,
    ) -> Result<SignedChange, NetworkDocumentError> {
        let author = secret.key_id();
        // Try the operation on the membership first: as the newest operation, it is folded
        // after everything held.
        if self.dirty {
            self.refold();
        }
        let mut trial = self
            .membership
            .clone()
            .ok_or_else(|| NetworkDocumentError::NotAllowed(NO_GENESIS.into()))?;
        let trial_hash = ChangeHash([0xff; 32]);
        trial.read(&LoggedOperation::new(
            trial_hash,
            self.doc.get_heads(),
            author,
            now,
            operation.clone(),
        ));
        if let Some(void) = trial.void_of(&trial_hash) {
            return Err(NetworkDocumentError::Void(void.clone()));
        }
        if let Some(reason) = trial.void_reason(&trial_hash) {
            return Err(NetworkDocumentError::NotAllowed(reason.to_owned()));
        }
        let message = operation.to_message();
        if message.len() > super::MAX_OPERATION_BYTES {
            return Err(NetworkDocumentError::NotAllowed(format!(
                "the operation is over {} bytes",
                super::MAX_OPERATION_BYTES
            )));
        }
        self.doc.set_actor(ActorId::from(author.as_bytes()));
        let hash = self.doc.empty_change(
            CommitOptions::default()
                .with_message(message)
                .with_time(now),
        );
        let change = self.doc.get_change_by_hash(&hash).ok_or_else(|| {
            NetworkDocumentError::Automerge("the operation produced no change".into())
        })?;
        let signed = SignedChange::sign(self.id.clone(), change, secret);
        let op = logged(&signed)?;
        // It depends on everything held, so it is read last: no need to fold again.
        if let Some(membership) = self.membership.as_mut() {
            membership.read(&op);
        }
        self.operations.push(op);
        Ok(signed)
    }

    /// Folds the membership from every operation held.
    pub fn refold(&mut self) {
        self.membership = Membership::fold(self.network, &self.operations);
        self.dirty = false;
    }
}
