//! Catch-up (`/passerelle/sync`): asking a peer for what this node lacks, serving what a
//! peer lacks, and passing on what arrived.

use libp2p::PeerId;
use libp2p::request_response::{self, ResponseChannel};
use tracing::{debug, warn};

use super::{NetworkActor, PeerIdentity, RequestKind, TaskResult};
use crate::identity::KeyId;
use crate::node::{NodeError, Rejection, RemoteOutcome, SyncOffer, SyncServed};
use crate::protocol::{AdmissionMessage, MAX_SYNC_DOCUMENTS, SyncRequest, SyncResponse};

impl NetworkActor {
    /// Starts a catch-up with every connected peer (one in flight per peer at most).
    pub(super) fn sync_all(&mut self) {
        let connected: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in connected {
            self.start_sync(peer);
        }
    }

    pub(super) fn start_sync(&mut self, peer: PeerId) {
        if !self.syncing.insert(peer) {
            self.resync.insert(peer);
            return;
        }
        let handle = self.handle.clone();
        if !self.spawn_task(async move {
            TaskResult::Offer {
                peer,
                offer: handle.sync_offer().await,
            }
        }) {
            // The next round asks again.
            self.syncing.remove(&peer);
        }
    }

    pub(super) fn handle_sync_event(
        &mut self,
        event: request_response::Event<SyncRequest, SyncResponse>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    if !self.within_budget(peer, RequestKind::Sync) {
                        return;
                    }
                    if request.documents.len() > MAX_SYNC_DOCUMENTS {
                        self.penalise(
                            peer,
                            &[Rejection {
                                code: crate::node::RejectionCode::OversizedRequest,
                                reason: "sync request lists too many documents".into(),
                            }],
                        );
                        return;
                    }
                    let handle = self.handle.clone();
                    // Shed, the channel is dropped: the requester asks again next round.
                    let _ = self.spawn_task(async move {
                        TaskResult::Served {
                            peer,
                            channel,
                            served: match KeyId::from_peer_id(&peer) {
                                Some(from) => handle.sync_serve(request, from).await,
                                // The gate refuses such peers; serve nothing if one slips by.
                                None => Ok(SyncServed {
                                    response: SyncResponse {
                                        changes: Vec::new(),
                                        more: false,
                                        documents: Vec::new(),
                                    },
                                    requester_has_more: false,
                                }),
                            },
                        }
                    });
                }
                request_response::Message::Response { response, .. } => {
                    self.sync_bytes_received +=
                        response.changes.iter().map(|c| c.len() as u64).sum::<u64>();
                    self.sync_bytes_received += response
                        .documents
                        .iter()
                        .map(|d| d.len() as u64)
                        .sum::<u64>();
                    for change in &response.changes {
                        self.record_inbound(change);
                    }
                    if self.recording() {
                        // Recorded uncompressed, so that what a document carries can be
                        // searched for in the record.
                        for document in &response.documents {
                            let bounded = crate::automerge_bounds::check_document(
                                &document.automerge,
                                crate::automerge_bounds::MAX_INFLATED_DOCUMENT,
                            );
                            let plain = bounded
                                .ok()
                                .and_then(|_| automerge::Automerge::load(&document.automerge).ok())
                                .map(|d| d.save_nocompress())
                                .unwrap_or_else(|| document.automerge.to_vec());
                            self.record_inbound(&plain);
                        }
                    }
                    self.publish_status();
                    let handle = self.handle.clone();
                    let more = response.more;
                    let changes = response.changes.into_iter().map(|c| c.into_vec()).collect();
                    let documents = response.documents;
                    if !self.spawn_task(async move {
                        TaskResult::Applied {
                            peer,
                            outcome: handle
                                .apply_received(changes, documents, KeyId::from_peer_id(&peer))
                                .await,
                            more,
                        }
                    }) {
                        // Shed, what was sent is not applied: the next round's catch-up
                        // brings it again.
                        self.syncing.remove(&peer);
                    }
                }
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                debug!(peer = %peer, error = %error, "sync request failed");
                self.syncing.remove(&peer);
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(peer = %peer, error = %error, "inbound sync failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Our catch-up request for `peer` is ready (or not needed): send it, with this node's
    /// admission request when it has one to hand.
    pub(super) fn offer_ready(&mut self, peer: PeerId, offer: Result<SyncOffer, NodeError>) {
        match offer {
            Ok(offer) if self.swarm.is_connected(&peer) => {
                if let Some(request) = offer.admission_request {
                    let info = self.peers.entry(peer).or_default();
                    if !info.admission_sent {
                        info.admission_sent = true;
                        self.swarm.behaviour_mut().admission.send_request(
                            &peer,
                            AdmissionMessage {
                                request: serde_bytes::ByteBuf::from(request),
                            },
                        );
                    }
                }
                self.swarm.behaviour_mut().sync.send_request(
                    &peer,
                    SyncRequest {
                        documents: offer.documents,
                        network: offer.network,
                    },
                );
            }
            Ok(_) => {
                self.syncing.remove(&peer);
            }
            Err(e) => {
                warn!(error = %e, "could not prepare a sync request");
                self.syncing.remove(&peer);
            }
        }
    }

    /// A peer's catch-up request was served: send the answer, and catch up with it in turn
    /// when it holds more.
    pub(super) fn sync_served(
        &mut self,
        peer: PeerId,
        channel: ResponseChannel<SyncResponse>,
        served: Result<SyncServed, NodeError>,
    ) {
        self.conduct.served(peer);
        match served {
            Ok(served) => {
                self.sync_bytes_sent += served
                    .response
                    .changes
                    .iter()
                    .map(|c| c.len() as u64)
                    .sum::<u64>();
                if self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, served.response)
                    .is_err()
                {
                    debug!(peer = %peer, "sync response not sent: the peer left");
                }
                if served.requester_has_more {
                    self.start_sync(peer);
                }
            }
            Err(e) => warn!(error = %e, "could not serve a sync request"),
        }
    }

    /// What a peer sent by catch-up was applied: judge it, and pass it on.
    pub(super) fn caught_up(
        &mut self,
        peer: PeerId,
        outcome: Result<RemoteOutcome, NodeError>,
        more: bool,
    ) {
        self.syncing.remove(&peer);
        let again = self.resync.remove(&peer);
        match outcome {
            Ok(outcome) => {
                self.penalise(peer, &outcome.rejected);
                if outcome.membership_changed {
                    self.sync_all();
                }
                self.peers.entry(peer).or_default().last_sync = Some(crate::unix_now());
                if outcome.applied > 0 {
                    debug!(peer = %peer, applied = outcome.applied, "caught up");
                    if !more {
                        // What arrived by catch-up is not gossiped: pass it on by
                        // catch-up with the other peers now, not at the next tick.
                        let others: Vec<PeerId> = self
                            .swarm
                            .connected_peers()
                            .filter(|p| **p != peer)
                            .copied()
                            .collect();
                        for other in others {
                            self.start_sync(other);
                        }
                    }
                }
                if (more && outcome.rejected.is_empty()) || again {
                    self.start_sync(peer);
                }
            }
            Err(e) => warn!(error = %e, "could not apply changes from a peer"),
        }
        self.publish_status();
    }
}
