//! Catch-up (`/passerelle/sync`): asking a peer for what this node lacks, serving what a
//! peer lacks, and passing on what arrived. A round starts with a digest
//! (`/passerelle/sync-digest/2` on a kept stream, [`super::step`]): when the peer holds
//! the same documents at the same heads, that is all an idle link exchanges; otherwise (or
//! with a peer of an older release) the round lists this node's heads.

use libp2p::PeerId;
use libp2p::request_response::{self, ResponseChannel};
use tracing::{debug, warn};

use libp2p::swarm::ConnectionId;

use super::{NetworkActor, PeerIdentity, RequestKind, TaskResult, step};
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
                    if request.documents.len() > MAX_SYNC_DOCUMENTS
                        || request.held_back.len() > MAX_SYNC_DOCUMENTS
                    {
                        self.refuse_oversized(peer, "sync request lists too many documents".into());
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
                                    held_back: Vec::new(),
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
            Ok(mut offer) if self.swarm.is_connected(&peer) => {
                if let Some(request) = offer.admission_request.take() {
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
                if self.list_next.remove(&peer)
                    || self.no_digest.contains(&peer)
                    || !self.speaks_digest()
                {
                    self.list_heads(peer, offer);
                } else {
                    let digest =
                        crate::sync::round_digest(offer.network.as_deref(), &offer.documents);
                    let asked = self
                        .swarm
                        .behaviour_mut()
                        .step
                        .as_mut()
                        .is_some_and(|step| step.ask(peer, digest));
                    if asked {
                        self.digest_offers.insert(peer, offer);
                    } else {
                        self.list_heads(peer, offer);
                    }
                }
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
                let sent_changes = !served.response.changes.is_empty();
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
                if !served.held_back.is_empty() {
                    self.held_back
                        .entry(peer)
                        .or_default()
                        .extend(served.held_back);
                }
                if served.requester_has_more {
                    self.list_next.insert(peer);
                    self.start_sync(peer);
                }
                if sent_changes {
                    self.mark_busy();
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
                    self.mark_busy();
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
                if more && outcome.rejected.is_empty() {
                    self.list_next.insert(peer);
                }
                if (more && outcome.rejected.is_empty()) || again {
                    self.start_sync(peer);
                }
            }
            Err(e) => warn!(error = %e, "could not apply changes from a peer"),
        }
        self.publish_status();
    }

    /// A request larger than the protocol allows: counted against the peer.
    fn refuse_oversized(&mut self, peer: PeerId, reason: String) {
        self.penalise(
            peer,
            &[Rejection {
                code: crate::node::RejectionCode::OversizedRequest,
                reason,
            }],
        );
    }

    /// Lists this node's heads to `peer` (the round's second step, or its only one).
    fn list_heads(&mut self, peer: PeerId, offer: SyncOffer) {
        self.rounds_listed += 1;
        self.swarm.behaviour_mut().sync.send_request(
            &peer,
            SyncRequest {
                documents: offer.documents,
                network: offer.network,
                held_back: self.held_back.remove(&peer).unwrap_or_default(),
                compact: true,
            },
        );
    }

    /// A peer's digest was compared with what this node holds: answer it.
    pub(super) fn digest_served(
        &mut self,
        peer: PeerId,
        reply: DigestAnswer,
        in_step: Result<bool, NodeError>,
    ) {
        self.conduct.served(peer);
        match in_step {
            Ok(in_step) => {
                if in_step {
                    self.answered_in_step
                        .insert(peer, std::time::Instant::now());
                }
                if let Some(step) = self.swarm.behaviour_mut().step.as_mut() {
                    step.answer(peer, reply.connection, reply.question, in_step);
                }
            }
            Err(e) => warn!(error = %e, "could not compare a sync digest"),
        }
    }

    pub(super) fn handle_step_event(&mut self, event: step::Event) {
        match event {
            step::Event::Asked {
                peer,
                connection,
                question,
                digest,
            } => {
                // Over budget, unanswered: the asker lists its heads after its timeout.
                if !self.within_budget(peer, RequestKind::Sync) {
                    return;
                }
                let handle = self.handle.clone();
                // Shed, unanswered likewise.
                let _ = self.spawn_task(async move {
                    let in_step = handle.sync_offer().await.map(|ours| {
                        crate::sync::round_digest(ours.network.as_deref(), &ours.documents)
                            == digest
                    });
                    TaskResult::DigestServed {
                        peer,
                        reply: DigestAnswer {
                            connection,
                            question,
                        },
                        in_step,
                    }
                });
            }
            step::Event::Answered { peer, in_step } => {
                let Some(offer) = self.digest_offers.remove(&peer) else {
                    return;
                };
                if in_step {
                    self.rounds_in_step += 1;
                    self.syncing.remove(&peer);
                    self.peers.entry(peer).or_default().last_sync = Some(crate::unix_now());
                    if self.resync.remove(&peer) {
                        self.start_sync(peer);
                    }
                    self.publish_status();
                } else if self.swarm.is_connected(&peer) {
                    self.list_heads(peer, offer);
                } else {
                    self.syncing.remove(&peer);
                }
            }
            step::Event::Failed { peer, unsupported } => {
                debug!(peer = %peer, unsupported, "sync digest question failed");
                if unsupported {
                    // A node of an older release: its rounds list heads.
                    self.no_digest.insert(peer);
                }
                match self.digest_offers.remove(&peer) {
                    Some(offer) if self.swarm.is_connected(&peer) => self.list_heads(peer, offer),
                    _ => {
                        self.syncing.remove(&peer);
                    }
                }
            }
        }
    }
}

/// Where a digest's answer goes: the question's kept stream.
pub(super) struct DigestAnswer {
    connection: ConnectionId,
    question: u64,
}
