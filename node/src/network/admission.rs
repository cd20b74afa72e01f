//! Admission requests (`/passerelle/admission`): a candidate's request handed to members'
//! nodes, and their receipt.

use libp2p::PeerId;
use libp2p::request_response::{self, ResponseChannel};
use tracing::{debug, info, warn};

use super::{NetworkActor, PeerIdentity, RequestKind, TaskResult};
use crate::identity::KeyId;
use crate::node::NodeError;
use crate::protocol::{AdmissionMessage, AdmissionReply};

impl NetworkActor {
    /// This node just signed its admission request: a catch-up round with every connected
    /// peer now hands it over (the round carries it to each peer once per connection).
    pub(super) fn hand_admission_request(&mut self) {
        let connected: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in connected {
            self.peers.entry(peer).or_default().admission_sent = false;
            self.start_sync(peer);
        }
    }

    pub(super) fn handle_admission_event(
        &mut self,
        event: request_response::Event<AdmissionMessage, AdmissionReply>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    self.record_inbound(&request.request);
                    if !self.within_budget(peer, RequestKind::Admission) {
                        return;
                    }
                    let Some(from) = KeyId::from_peer_id(&peer) else {
                        return;
                    };
                    let handle = self.handle.clone();
                    // Shed, the channel is dropped: the candidate asks again.
                    let _ = self.spawn_task(async move {
                        TaskResult::AdmissionAnswered {
                            peer,
                            channel,
                            answer: handle
                                .admission_received(request.request.into_vec(), from)
                                .await,
                        }
                    });
                }
                request_response::Message::Response { response, .. } => {
                    info!(peer = %peer, received = response.received, message = %response.message, "admission request delivered");
                }
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                debug!(peer = %peer, error = %error, "admission request not delivered");
                if let Some(info) = self.peers.get_mut(&peer) {
                    info.admission_sent = false;
                }
            }
            _ => {}
        }
    }

    /// The documents actor took (or refused) a candidate's admission request: answer it.
    pub(super) fn admission_answered(
        &mut self,
        peer: PeerId,
        channel: ResponseChannel<AdmissionReply>,
        answer: Result<String, NodeError>,
    ) {
        let reply = match answer {
            Ok(message) => AdmissionReply {
                received: true,
                message,
            },
            Err(e) => {
                warn!(peer = %peer, error = %e, "admission request refused");
                AdmissionReply {
                    received: false,
                    message: e.to_string(),
                }
            }
        };
        let _ = self
            .swarm
            .behaviour_mut()
            .admission
            .send_response(channel, reply);
    }
}
