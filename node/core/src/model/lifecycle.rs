//! The referral lifecycle (after HL7 FHIR SDOH Clinical Care Task and Primero): states,
//! who may move a referral from one to another, and what each move must carry. Pure: the
//! same function decides locally (refusing an illegal move with a clear message) and on
//! every node that receives a move (rejecting a forged one).
//!
//! ```text
//! pending ──accept──▶ accepted ──start──▶ in_progress ◀──▶ waitlisted
//!    │                   │  │                 │
//!    ├─decline           │  └─waitlist        ├─complete / fail / withdraw
//!    ├─withdraw          ├─complete / fail / withdraw
//!    └─expire (deadline passed unanswered)
//! any state ──entered_in_error (sender)
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a referral stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Sent, not answered yet.
    Pending,
    /// The receiver accepted it.
    Accepted,
    /// The receiver declined it (with a reason).
    Declined,
    /// The sender withdrew it (with a reason).
    Withdrawn,
    /// The receiver is providing the service.
    InProgress,
    /// The receiver put the person on its waiting list (with a reason).
    Waitlisted,
    /// The service was delivered (with an outcome).
    Completed,
    /// The service could not be delivered (with a reason).
    Failed,
    /// The response deadline passed unanswered.
    Expired,
    /// The sender made it by mistake.
    EnteredInError,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 10] = [
        Self::Pending,
        Self::Accepted,
        Self::Declined,
        Self::Withdrawn,
        Self::InProgress,
        Self::Waitlisted,
        Self::Completed,
        Self::Failed,
        Self::Expired,
        Self::EnteredInError,
    ];

    /// The code used on the wire and in the CLI.
    pub fn code(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Declined => "declined",
            Self::Withdrawn => "withdrawn",
            Self::InProgress => "in_progress",
            Self::Waitlisted => "waitlisted",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::EnteredInError => "entered_in_error",
        }
    }

    /// True when nothing can move it any more (but `entered_in_error`).
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            Self::Declined
                | Self::Withdrawn
                | Self::Completed
                | Self::Failed
                | Self::Expired
                | Self::EnteredInError
        )
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|status| status.code() == wanted)
            .ok_or_else(|| {
                format!(
                    "status {s:?} is not one of: {}",
                    Self::ALL.map(Status::code).join(", ")
                )
            })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Who acts on a referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The organisation that made the referral.
    Sender,
    /// The organisation it was sent to.
    Receiver,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sender => "the sending organisation",
            Self::Receiver => "the receiving organisation",
        })
    }
}

/// Why a referral was declined, withdrawn, waitlisted or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The person does not meet the service's criteria.
    NotEligible,
    /// No place now.
    NoCapacity,
    /// The person could not be reached.
    CouldNotContact,
    /// The person no longer wants the service.
    NoLongerInterested,
    /// The person was referred to another service.
    ReferredElsewhere,
    /// The service is not offered any more (or not there).
    ServiceUnavailable,
    /// The person moved out of the area.
    Relocated,
    /// Another reason (explained to the other organisation out of band).
    Other,
}

impl Reason {
    /// Every reason code.
    pub const ALL: [Reason; 8] = [
        Self::NotEligible,
        Self::NoCapacity,
        Self::CouldNotContact,
        Self::NoLongerInterested,
        Self::ReferredElsewhere,
        Self::ServiceUnavailable,
        Self::Relocated,
        Self::Other,
    ];

    /// The code.
    pub fn code(self) -> &'static str {
        match self {
            Self::NotEligible => "not_eligible",
            Self::NoCapacity => "no_capacity",
            Self::CouldNotContact => "could_not_contact",
            Self::NoLongerInterested => "no_longer_interested",
            Self::ReferredElsewhere => "referred_elsewhere",
            Self::ServiceUnavailable => "service_unavailable",
            Self::Relocated => "relocated",
            Self::Other => "other",
        }
    }
}

impl FromStr for Reason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.code() == s.trim())
            .ok_or_else(|| {
                format!(
                    "reason {s:?} is not one of: {}",
                    Self::ALL.map(Reason::code).join(", ")
                )
            })
    }
}

/// What a completed referral achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The person's need was met.
    Achieved,
    /// Partly met.
    PartiallyAchieved,
    /// The service was delivered but the need was not met.
    NotAchieved,
}

impl Outcome {
    /// Every outcome code.
    pub const ALL: [Outcome; 3] = [Self::Achieved, Self::PartiallyAchieved, Self::NotAchieved];

    /// The code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Achieved => "achieved",
            Self::PartiallyAchieved => "partially_achieved",
            Self::NotAchieved => "not_achieved",
        }
    }
}

impl FromStr for Outcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|o| o.code() == s.trim())
            .ok_or_else(|| {
                format!(
                    "outcome {s:?} is not one of: {}",
                    Self::ALL.map(Outcome::code).join(", ")
                )
            })
    }
}

/// A move of a referral, with what it must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "move", rename_all = "snake_case")]
pub enum Move {
    /// The receiver takes it on.
    Accept,
    /// The receiver declines it.
    Decline {
        /// Why.
        reason: Reason,
    },
    /// The sender withdraws it.
    Withdraw {
        /// Why.
        reason: Reason,
    },
    /// The receiver starts providing the service.
    Start,
    /// The receiver puts the person on its waiting list.
    Waitlist {
        /// Why.
        reason: Reason,
    },
    /// The receiver completed it.
    Complete {
        /// What it achieved.
        outcome: Outcome,
    },
    /// The receiver could not deliver it.
    Fail {
        /// Why.
        reason: Reason,
    },
    /// The response deadline passed unanswered (recorded by the sender's node).
    Expire,
    /// The sender made it by mistake.
    EnteredInError,
}

impl Move {
    /// The status the move leads to.
    pub fn target(self) -> Status {
        match self {
            Self::Accept => Status::Accepted,
            Self::Decline { .. } => Status::Declined,
            Self::Withdraw { .. } => Status::Withdrawn,
            Self::Start => Status::InProgress,
            Self::Waitlist { .. } => Status::Waitlisted,
            Self::Complete { .. } => Status::Completed,
            Self::Fail { .. } => Status::Failed,
            Self::Expire => Status::Expired,
            Self::EnteredInError => Status::EnteredInError,
        }
    }

    /// Who may make it.
    pub fn actor(self) -> Role {
        match self {
            Self::Withdraw { .. } | Self::Expire | Self::EnteredInError => Role::Sender,
            _ => Role::Receiver,
        }
    }
}

/// Why a move is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveError {
    /// The other organisation makes this move.
    #[error("only {allowed} may move a referral to {target}")]
    WrongActor {
        /// The status asked for.
        target: Status,
        /// Who may.
        allowed: Role,
    },
    /// Not a move from this status.
    #[error(
        "a referral that is {from} cannot become {target}; from {from} it can become: {options}"
    )]
    NotFromHere {
        /// The current status.
        from: Status,
        /// The status asked for.
        target: Status,
        /// What is possible from here, for the message.
        options: String,
    },
    /// `expire` before the deadline.
    #[error("the response deadline has not passed yet")]
    NotYetExpired,
}

impl MoveError {
    /// Why, in French.
    pub fn fr(&self) -> String {
        let role = |role: &Role| match role {
            Role::Sender => "l'organisation qui a envoyé la référence",
            Role::Receiver => "l'organisation qui l'a reçue",
        };
        match self {
            Self::WrongActor { target, allowed } => {
                format!(
                    "seule {} peut passer une référence à {target}",
                    role(allowed)
                )
            }
            Self::NotFromHere {
                from,
                target,
                options,
            } => format!(
                "une référence {from} ne peut pas passer à {target} ; depuis {from}, elle peut passer à : {options}"
            ),
            Self::NotYetExpired => "le délai de réponse n'est pas encore passé".to_owned(),
        }
    }
}

impl From<MoveError> for crate::model::ValidationError {
    fn from(e: MoveError) -> Self {
        Self::new("move", e.to_string()).fr(e.fr())
    }
}

/// The statuses a move can lead to from `from` (whoever makes it).
pub fn targets_from(from: Status) -> &'static [Status] {
    use Status::*;
    match from {
        Pending => &[Accepted, Declined, Withdrawn, Expired, EnteredInError],
        Accepted => &[
            InProgress,
            Waitlisted,
            Completed,
            Failed,
            Withdrawn,
            EnteredInError,
        ],
        InProgress => &[Waitlisted, Completed, Failed, Withdrawn, EnteredInError],
        Waitlisted => &[InProgress, Withdrawn, EnteredInError],
        Declined | Withdrawn | Completed | Failed | Expired => &[EnteredInError],
        EnteredInError => &[],
    }
}

/// Decides a move: by `role`, on a referral that is `from`, at unix time `now`, with its
/// response `deadline`. Returns the new status, or why the move is refused.
pub fn decide(
    from: Status,
    role: Role,
    action: Move,
    now: i64,
    deadline: i64,
) -> Result<Status, MoveError> {
    let target = action.target();
    if action.actor() != role {
        return Err(MoveError::WrongActor {
            target,
            allowed: action.actor(),
        });
    }
    if !targets_from(from).contains(&target) {
        let options = targets_from(from)
            .iter()
            .map(|s| s.code())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(MoveError::NotFromHere {
            from,
            target,
            options: if options.is_empty() {
                "nothing (it is final)".into()
            } else {
                options
            },
        });
    }
    if action == Move::Expire && now <= deadline {
        return Err(MoveError::NotYetExpired);
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINE: i64 = 1_000;

    fn ok(from: Status, role: Role, action: Move) -> Status {
        decide(from, role, action, 10, DEADLINE).unwrap()
    }

    #[test]
    fn the_happy_path_from_pending_to_completed() {
        let s = ok(Status::Pending, Role::Receiver, Move::Accept);
        let s = ok(s, Role::Receiver, Move::Start);
        let s = ok(
            s,
            Role::Receiver,
            Move::Waitlist {
                reason: Reason::NoCapacity,
            },
        );
        let s = ok(s, Role::Receiver, Move::Start);
        let s = ok(
            s,
            Role::Receiver,
            Move::Complete {
                outcome: Outcome::Achieved,
            },
        );
        assert_eq!(s, Status::Completed);
        assert!(s.is_closed());
    }

    #[test]
    fn only_the_sender_withdraws_and_only_the_receiver_answers() {
        let withdraw = Move::Withdraw {
            reason: Reason::ReferredElsewhere,
        };
        assert_eq!(
            ok(Status::Pending, Role::Sender, withdraw),
            Status::Withdrawn
        );
        let error = decide(Status::Pending, Role::Receiver, withdraw, 10, DEADLINE).unwrap_err();
        assert!(
            error.to_string().contains("sending organisation"),
            "{error}"
        );
        let error = decide(Status::Pending, Role::Sender, Move::Accept, 10, DEADLINE).unwrap_err();
        assert!(
            error.to_string().contains("receiving organisation"),
            "{error}"
        );
    }

    #[test]
    fn an_illegal_move_names_what_is_possible() {
        let error = decide(
            Status::Pending,
            Role::Receiver,
            Move::Complete {
                outcome: Outcome::Achieved,
            },
            10,
            DEADLINE,
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("pending cannot become completed"), "{text}");
        assert!(text.contains("accepted, declined"), "{text}");
        let error =
            decide(Status::Completed, Role::Receiver, Move::Start, 10, DEADLINE).unwrap_err();
        assert!(error.to_string().contains("entered_in_error"), "{error}");
    }

    #[test]
    fn expiry_only_after_the_deadline_and_only_while_pending() {
        assert_eq!(
            decide(Status::Pending, Role::Sender, Move::Expire, 10, DEADLINE),
            Err(MoveError::NotYetExpired)
        );
        assert_eq!(
            decide(
                Status::Pending,
                Role::Sender,
                Move::Expire,
                DEADLINE + 1,
                DEADLINE
            ),
            Ok(Status::Expired)
        );
        assert!(
            decide(
                Status::Accepted,
                Role::Sender,
                Move::Expire,
                DEADLINE + 1,
                DEADLINE
            )
            .is_err()
        );
    }

    #[test]
    fn entered_in_error_from_anywhere_but_itself() {
        for from in Status::ALL {
            let result = decide(from, Role::Sender, Move::EnteredInError, 10, DEADLINE);
            assert_eq!(result.is_ok(), from != Status::EnteredInError, "{from}");
        }
    }

    #[test]
    fn every_move_target_is_reachable_and_codes_parse() {
        for from in Status::ALL {
            for target in targets_from(from) {
                assert_ne!(*target, Status::Pending);
            }
        }
        for reason in Reason::ALL {
            assert_eq!(reason.code().parse::<Reason>().unwrap(), reason);
        }
        for outcome in Outcome::ALL {
            assert_eq!(outcome.code().parse::<Outcome>().unwrap(), outcome);
        }
        let error = "tired".parse::<Reason>().unwrap_err();
        assert!(error.contains("no_capacity"), "{error}");
    }
}
