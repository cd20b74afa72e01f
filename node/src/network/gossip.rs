//! Live changes (gossipsub): publishing this node's changes, judging received ones before
//! gossipsub forwards them.

use libp2p::{PeerId, gossipsub};
use tracing::{debug, warn};

use super::{GRAYLIST_THRESHOLD, NetworkActor, PeerIdentity, TaskResult};
use crate::identity::KeyId;
use crate::node::{NodeError, RemoteOutcome};

impl NetworkActor {
    pub(super) fn handle_local_change(&mut self, change: Vec<u8>) {
        self.mark_busy();
        let membership_operation = crate::envelope::SignedChange::decode(&change)
            .is_ok_and(|c| c.document().network_owner().is_some());
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .inner_mut()
            .publish(self.topic.clone(), change)
        {
            Ok(_) => {}
            Err(e) => debug!(error = %e, "not published now; peers get it by catch-up"),
        }
        if membership_operation {
            // A decision may let peers serve or be served more: catch up with all of them.
            self.sync_all();
        }
    }

    pub(super) fn handle_gossip(
        &mut self,
        source: PeerId,
        message_id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) {
        self.gossip_bytes_received += message.data.len() as u64;
        self.record_inbound(&message.data);
        let handle = self.handle.clone();
        let id = message_id.clone();
        if !self.spawn_task(async move {
            TaskResult::Validated {
                source,
                message_id: id,
                outcome: handle
                    .apply_remote(vec![message.data], KeyId::from_peer_id(&source))
                    .await,
            }
        }) {
            // Not judged: neither forwarded nor held against the sender; the change comes
            // again by catch-up.
            self.swarm
                .behaviour_mut()
                .gossipsub
                .inner_mut()
                .report_message_validation_result(
                    &message_id,
                    &source,
                    gossipsub::MessageAcceptance::Ignore,
                );
        }
    }

    /// A gossiped change was judged and, when sound, stored: tell gossipsub whether to
    /// forward it, and hold a refusal against its sender.
    pub(super) fn gossip_validated(
        &mut self,
        source: PeerId,
        message_id: gossipsub::MessageId,
        outcome: Result<RemoteOutcome, NodeError>,
    ) {
        let acceptance = match &outcome {
            Ok(o) if !o.rejected.is_empty() => gossipsub::MessageAcceptance::Reject,
            Ok(o) if o.applied > 0 => gossipsub::MessageAcceptance::Accept,
            Ok(_) => gossipsub::MessageAcceptance::Ignore,
            Err(e) => {
                warn!(error = %e, "could not apply a gossiped change");
                gossipsub::MessageAcceptance::Ignore
            }
        };
        if let Ok(o) = &outcome {
            self.penalise(source, &o.rejected);
            if o.membership_changed {
                self.sync_all();
            }
            let behind = o
                .rejected
                .iter()
                .any(|r| r.code == crate::node::RejectionCode::NotMember);
            if o.pending > 0 || behind {
                // Its dependencies are missing, or it may know of an admission this
                // node has not seen yet: catch up with the sender.
                self.start_sync(source);
            }
        }
        self.swarm
            .behaviour_mut()
            .gossipsub
            .inner_mut()
            .report_message_validation_result(&message_id, &source, acceptance);
        if acceptance == gossipsub::MessageAcceptance::Reject
            && self
                .swarm
                .behaviour()
                .gossipsub
                .inner()
                .peer_score(&source)
                .is_some_and(|score| score < GRAYLIST_THRESHOLD)
        {
            self.cut_off(source, "gossip score below the graylist threshold");
        }
        self.publish_status();
    }
}
