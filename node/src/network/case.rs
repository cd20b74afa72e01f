//! Case files (`/passerelle/case`): the encrypted case-file messages of referrals, sent to
//! the one organisation concerned and retried until taken.

use std::time::Duration;

use libp2p::request_response::{self, ResponseChannel};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId};
use tracing::{debug, warn};

use super::{NetworkActor, PeerIdentity, RequestKind, TaskResult};
use crate::identity::KeyId;
use crate::node::{NodeError, Outgoing};
use crate::protocol::{CaseMessage, CaseReply};

/// First pause before retrying a case-file message the other node asked to retry.
pub(super) const FIRST_CASE_RETRY: Duration = Duration::from_millis(500);

impl NetworkActor {
    /// Asks the documents actor for the case-file messages to send (one look at a time).
    pub(super) fn flush_case_outbox(&mut self) {
        if self.case_outbox_asked {
            return;
        }
        let handle = self.handle.clone();
        // Shed, the next round looks at the outbox again.
        self.case_outbox_asked = self.spawn_task(async move {
            TaskResult::CaseOutbox {
                outgoing: handle.case_outbox().await,
            }
        });
    }

    pub(super) fn schedule_case_retry(&mut self) {
        if self.case_retry_scheduled {
            return;
        }
        let delay = self.case_retry_delay;
        self.case_retry_delay = (delay * 2).min(self.config.sync_interval);
        // Shed, the next round retries.
        self.case_retry_scheduled = self.spawn_task(async move {
            tokio::time::sleep(delay).await;
            TaskResult::CaseRetry
        });
    }

    pub(super) fn send_case_messages(&mut self, outgoing: Vec<Outgoing>) {
        if !outgoing.is_empty() {
            self.mark_busy();
        }
        for Outgoing {
            to,
            key,
            kind,
            message,
            addresses: published,
        } in outgoing
        {
            let referral = match &message {
                CaseMessage::Deliver { referral, .. }
                | CaseMessage::Erase { referral }
                | CaseMessage::ToOffice { referral, .. } => referral.clone(),
            };
            if self
                .case_in_flight
                .values()
                .any(|(r, k, _)| *r == referral && *k == kind)
            {
                continue;
            }
            let peer = key.peer_id();
            if self.swarm.is_connected(&peer) {
                let request = self.swarm.behaviour_mut().case.send_request(&peer, message);
                self.case_in_flight.insert(request, (referral, kind, to));
            } else {
                // Not connected: dial it on the addresses it told this node (identify), then
                // those it published in its document, then through the relays this node
                // knows (it may be behind NAT); the message goes once connected.
                let mut addresses = self.known_addresses.get(&peer).cloned().unwrap_or_default();
                for address in published.iter().filter_map(|a| a.parse::<Multiaddr>().ok()) {
                    if !addresses.contains(&address) {
                        addresses.push(address);
                    }
                }
                addresses.sort_by_key(super::relay::is_relayed);
                for address in self.through_relays(peer) {
                    if !addresses.contains(&address) {
                        addresses.push(address);
                    }
                }
                if addresses.is_empty() {
                    debug!(%referral, to = %to, "case-file message waits for its receiver to connect");
                    continue;
                }
                let opts = DialOpts::peer_id(peer)
                    .condition(libp2p::swarm::dial_opts::PeerCondition::DisconnectedAndNotDialing)
                    .addresses(addresses)
                    .build();
                if let Err(e) = self.swarm.dial(opts) {
                    debug!(peer = %peer, error = %e, "could not dial for a case file");
                }
            }
        }
    }

    pub(super) fn handle_case_event(
        &mut self,
        event: request_response::Event<CaseMessage, CaseReply>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    if self.recording() {
                        self.record_inbound(&serde_json::to_vec(&request).unwrap_or_default());
                    }
                    if !self.within_budget(peer, RequestKind::Case) {
                        return;
                    }
                    let Some(key) = KeyId::from_peer_id(&peer) else {
                        return;
                    };
                    let handle = self.handle.clone();
                    // Shed, the channel is dropped: the sender retries later.
                    let _ = self.spawn_task(async move {
                        TaskResult::CaseServed {
                            peer,
                            channel,
                            reply: handle.case_message(request, key).await,
                        }
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((referral, kind, to)) = self.case_in_flight.remove(&request_id) {
                        if response.done {
                            self.case_retry_delay = FIRST_CASE_RETRY;
                        } else {
                            // Usually the board entry is still on its way: try again soon,
                            // then less and less often.
                            self.schedule_case_retry();
                        }
                        debug!(%referral, ?kind, done = response.done, message = %response.message, "case-file message answered");
                        let handle = self.handle.clone();
                        // Shed, the answer is not recorded: the message stays in the
                        // outbox and is sent again (the other node answers it again).
                        let _ = self.spawn_task(async move {
                            if let Err(e) = handle.case_answered(referral, kind, to, response).await
                            {
                                warn!(error = %e, "could not record a case-file answer");
                            }
                            TaskResult::CaseRecorded
                        });
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                debug!(peer = %peer, error = %error, "case-file message not delivered; retried later");
                self.case_in_flight.remove(&request_id);
            }
            _ => {}
        }
    }

    /// The case-file outbox was read: send what it holds.
    pub(super) fn case_outbox_read(&mut self, outgoing: Result<Vec<Outgoing>, NodeError>) {
        self.case_outbox_asked = false;
        match outgoing {
            Ok(outgoing) => self.send_case_messages(outgoing),
            Err(e) => warn!(error = %e, "could not read the case-file outbox"),
        }
    }

    /// A case-file message from a peer was handled: answer it.
    pub(super) fn case_served(
        &mut self,
        peer: PeerId,
        channel: ResponseChannel<CaseReply>,
        reply: Result<CaseReply, NodeError>,
    ) {
        let reply = reply.unwrap_or_else(|e| CaseReply::retry(e.to_string()));
        if !reply.accepted {
            warn!(peer = %peer, message = %reply.message, "case-file message refused");
        }
        let _ = self
            .swarm
            .behaviour_mut()
            .case
            .send_response(channel, reply);
    }

    /// Time to look at the case-file outbox again (after a "retry later" answer).
    pub(super) fn case_retry(&mut self) {
        self.case_retry_scheduled = false;
        self.flush_case_outbox();
    }
}
