//! The referral records an organisation's document holds: what a sender wrote, a
//! receiver's answers, proposals on open referrals (no personal data). Their checks and the
//! board folded from them are in [`crate::referral::board`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::lifecycle::{Move, Status};
use crate::identity::OrgId;
use crate::reference::taxonomy;

/// Longest a response deadline may be after creation (one year).
pub const MAX_DEADLINE_SECONDS: i64 = 366 * 24 * 3600;
/// Most moves one side may record on one referral.
pub const MAX_MOVES: usize = 64;

/// How soon the receiver should answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// The usual.
    Routine,
    /// Answer first.
    Urgent,
}

impl Priority {
    /// The code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Routine => "routine",
            Self::Urgent => "urgent",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "routine" => Ok(Self::Routine),
            "urgent" => Ok(Self::Urgent),
            other => Err(format!("priority {other:?} is not one of: routine, urgent")),
        }
    }
}

/// One move as a document records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoveRecord {
    /// The move and what it carries.
    #[serde(rename = "move")]
    pub action: Move,
    /// The status its author saw when making it.
    pub from: Status,
    /// When (Unix seconds, the author's clock).
    pub at: i64,
    /// Receiver moves: how many of the sender's moves its author had seen.
    #[serde(default)]
    pub seen: u32,
}

/// An open referral's assignment to one of the members that proposed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// The organisation chosen.
    pub receiver: OrgId,
    /// Its service.
    pub service: String,
    /// When.
    pub at: i64,
}

/// A referral as the sending organisation's document holds it (`referrals/<id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentReferral {
    /// The receiving organisation; `None` for an open referral (see `assigned`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<OrgId>,
    /// The receiver's service id; `None` for an open referral.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// True for a referral to any member offering `category` in `region`.
    #[serde(default)]
    pub open: bool,
    /// Economic, social or psychosocial.
    pub dimension: taxonomy::Dimension,
    /// Category code of the service asked for.
    pub category: String,
    /// Region P-code where the person is.
    pub region: String,
    /// Routine or urgent.
    pub priority: Priority,
    /// When it was made (Unix seconds).
    pub created: i64,
    /// When the receiver should have answered by (Unix seconds).
    pub deadline: i64,
    /// Hex SHA-256 commitment to the case file (salted: it reveals nothing of it).
    pub commitment: String,
    /// An open referral's chosen receiver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned: Option<Assignment>,
    /// The sender's moves, in order.
    #[serde(default)]
    pub moves: Vec<MoveRecord>,
}

impl SentReferral {
    /// The receiver and its service, once known (assigned, for an open referral).
    pub fn destination(&self) -> Option<(OrgId, &str)> {
        match (&self.receiver, &self.service, &self.assigned) {
            (Some(receiver), Some(service), _) => Some((*receiver, service.as_str())),
            (_, _, Some(a)) => Some((a.receiver, a.service.as_str())),
            _ => None,
        }
    }
}

/// The receiving organisation's answers to one referral (`answers/<id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The organisation that sent the referral.
    pub sender: OrgId,
    /// The receiver's moves, in order.
    #[serde(default)]
    pub moves: Vec<MoveRecord>,
}

/// A member's offer to take an open referral (`proposals/<id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// The organisation that sent the open referral.
    pub sender: OrgId,
    /// The service the proposer offers for it.
    pub service: String,
    /// When.
    pub at: i64,
}
