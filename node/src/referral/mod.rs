//! The referral board (work in progress for the referrals issue): the lifecycle of a
//! referral between two organisations. Personal data never enters this module: the case
//! file travels point to point and is not part of the board.

pub mod lifecycle;
