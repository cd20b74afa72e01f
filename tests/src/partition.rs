//! Partitions: two members at either end of a link ([`netns::Link`]) that is cut and
//! restored, both writing meanwhile (directory edits and referral moves); how long after the
//! link returns until both hold the same documents at the same heads. Used by the partition
//! test (a few trials) and the partition bench (many, of 5 s to 4 min).

use std::time::{Duration, Instant};

use passerelle_node::identity::OrgId;
use passerelle_node::node::{ReferralReply, ReferralRequest, SendReferral};
use passerelle_node::referral::board::Priority;
use passerelle_node::referral::casefile::{
    CaseFile, Consent, ConsentMethod, ConsentRecord, FIELDS,
};
use passerelle_node::referral::lifecycle::Move;

use crate::netns::Link;
use crate::{TestNode, add, found_network, wait_converged};

/// What one trial saw.
#[derive(Debug, Clone, Copy)]
pub struct Trial {
    /// How long the link was cut.
    pub cut_for: Duration,
    /// From the link's return to identical heads on both nodes.
    pub healed_after: Duration,
    /// Whether, at the end of the cut, neither node still listed the other as connected.
    pub noticed: bool,
}

/// Two members in two network namespaces, the second dialling the first.
#[derive(Debug)]
pub struct Partitioned {
    /// The link between them.
    pub link: Link,
    /// The two nodes.
    pub nodes: Vec<TestNode>,
    service: String,
    /// Referrals sent by the first and not yet accepted by the second.
    unanswered: Vec<passerelle_node::ids::ReferralId>,
    round: usize,
}

/// A direct referral to `to` for `service`, with a case file and consent.
pub fn referral(to: OrgId, service: &str) -> SendReferral {
    SendReferral {
        to: Some(to),
        service: Some(service.parse().expect("a service id")),
        category: None,
        region: "CM005".into(),
        priority: Priority::Routine,
        respond_within: 7 * 24 * 3600,
        case_file: CaseFile {
            name: "Paul Essomba".into(),
            phone: Some("+237 677 00 00 00".into()),
            needs: vec!["job_placement".into()],
            ..CaseFile::default()
        },
        consent: ConsentRecord::Given(Consent {
            method: ConsentMethod::Verbal,
            given_at: passerelle_node::unix_now() - 60,
            expires_at: None,
            organisation: None,
            service: None,
            data: FIELDS.iter().map(|f| (*f).to_owned()).collect(),
        }),
    }
}

impl Partitioned {
    /// Creates the link, founds a network of two, starts both nodes (the production
    /// catch-up interval of 30 s) and waits until they converged.
    pub async fn start() -> Self {
        let link = Link::create();
        let mut nodes = vec![
            TestNode::init_on("Délégation Littoral", &link.hosts[0], vec![]),
            TestNode::init_on("ONG Avenir", &link.hosts[1], vec![]),
        ];
        found_network(&[&nodes[0], &nodes[1]], "1/2");
        nodes[0].start_in(&link.hosts[0].namespace).await;
        let first = nodes[0].listen_addr().await;
        if let Some(network) = nodes[1].config.network.as_mut() {
            network.peers = vec![first];
        }
        nodes[1].start_in(&link.hosts[1].namespace).await;
        let service = nodes[1]
            .handle()
            .edit(add("Placement en emploi", "CM005"))
            .await
            .expect("edit")
            .id;
        wait_converged(&nodes, 2).await;
        Self {
            link,
            nodes,
            service,
            unanswered: Vec::new(),
            round: 0,
        }
    }

    /// One trial: cuts the link, writes on both sides (the first adds a service and sends a
    /// referral; the second edits and accepts the referrals it holds), waits `cut_for`,
    /// restores the link and measures how long until both converge.
    pub async fn trial(&mut self, cut_for: Duration) -> Trial {
        self.round += 1;
        let round = self.round;
        self.link.cut();
        let cut_at = Instant::now();
        let (first, second) = (self.nodes[0].handle(), self.nodes[1].handle());
        first
            .edit(add(&format!("Pendant la coupure {round}"), "CM005"))
            .await
            .expect("edit during the cut");
        match first
            .referral(
                ReferralRequest::Send {
                    send: Box::new(referral(second.org_id(), &self.service)),
                },
                "agent du test",
            )
            .await
            .expect("send a referral during the cut")
        {
            ReferralReply::Receipt(receipt) => self.unanswered.push(receipt.id),
            other => panic!("unexpected reply {other:?}"),
        }
        second
            .edit(add(&format!("Ouvert pendant la coupure {round}"), "CM005"))
            .await
            .expect("edit during the cut");
        // The second answers the referrals that reached it before the cut.
        let mut still = Vec::new();
        for id in std::mem::take(&mut self.unanswered) {
            let answered = second
                .referral(
                    ReferralRequest::Move {
                        id,
                        action: Move::Accept,
                    },
                    "agent du test",
                )
                .await;
            if answered.is_err() {
                still.push(id);
            }
        }
        self.unanswered = still;
        if let Some(left) = cut_for.checked_sub(cut_at.elapsed()) {
            tokio::time::sleep(left).await;
        }
        let noticed =
            first.network_status().peers.is_empty() && second.network_status().peers.is_empty();
        self.link.restore();
        let restored = Instant::now();
        wait_converged(&self.nodes, 2).await;
        Trial {
            cut_for,
            healed_after: restored.elapsed(),
            noticed,
        }
    }

    /// Stops both nodes (the link goes when dropped).
    pub async fn stop(mut self) {
        for node in &mut self.nodes {
            node.stop().await;
        }
    }
}
