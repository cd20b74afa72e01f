//! Notifications, live: `GET /events` is a stream of server-sent events that the page's
//! script shows without reloading (a count in the page's title, a line per kind). Every
//! [`EVERY`] the node's board is read and the counts sent when they change: new incoming
//! referrals, case files received, referrals to answer within 24 h, overdue ones, offers on
//! this organisation's open referrals. A notification carries ids and counts only, never
//! personal data.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use passerelle_node::accounts::Role;
use passerelle_node::api;
use passerelle_node::control::local_stream;
use passerelle_node::identity::OrgId;
use passerelle_node::ids::ReferralId;
use passerelle_node::node::{ListFilter, NodeHandle};
use passerelle_node::referral::board::BoardEntry;
use passerelle_node::referral::lifecycle::Status;
use serde::Serialize;

use crate::App;

/// How often the board is read for a page that listens.
pub const EVERY: Duration = Duration::from_secs(2);

/// What a page is told.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Referrals sent to this organisation and not answered yet.
    pub incoming: usize,
    /// Their ids (to link to them).
    pub incoming_ids: Vec<ReferralId>,
    /// Incoming referrals whose case file this node holds.
    pub case_files: usize,
    /// Incoming referrals to answer within 24 hours.
    pub due_soon: usize,
    /// Incoming referrals past their deadline.
    pub overdue: usize,
    /// Offers made on this organisation's open referrals.
    pub proposals: usize,
}

/// The counts for the organisation of `handle`, now.
pub async fn counts(handle: &NodeHandle, by: &str) -> Result<Counts, api::ApiError> {
    let own: OrgId = handle.org_id();
    let (head, incoming): (api::BoardHead, Vec<BoardEntry>) = local_stream(
        handle,
        api::Board {
            filter: ListFilter {
                incoming: true,
                status: Some(Status::Pending),
                ..Default::default()
            },
        },
        by,
    )
    .await?;
    let (_, open): (api::BoardHead, Vec<BoardEntry>) = local_stream(
        handle,
        api::Board {
            filter: ListFilter {
                outgoing: true,
                status: Some(Status::Pending),
                ..Default::default()
            },
        },
        by,
    )
    .await?;
    let held: BTreeSet<&ReferralId> = head.case_files_held.iter().collect();
    let now = head.now;
    Ok(Counts {
        incoming: incoming.len(),
        incoming_ids: incoming.iter().map(|e| e.id).collect(),
        case_files: incoming.iter().filter(|e| held.contains(&e.id)).count(),
        due_soon: incoming
            .iter()
            .filter(|e| !e.overdue(now) && e.deadline - now <= 24 * 3600)
            .count(),
        overdue: incoming.iter().filter(|e| e.overdue(now)).count(),
        proposals: open
            .iter()
            .filter(|e| e.sender == own && e.receiver.is_none())
            .map(|e| e.proposals.len())
            .sum(),
    })
}

fn stream(
    handle: NodeHandle,
    by: String,
    stop: tokio::sync::watch::Receiver<bool>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(
        (handle, by, stop, None::<Counts>),
        |(handle, by, mut stop, last)| async move {
            loop {
                if last.is_some() {
                    tokio::select! {
                        _ = tokio::time::sleep(EVERY) => {}
                        // The page stops being served: the stream ends (the browser
                        // reconnects when the node is back).
                        _ = stop.wait_for(|s| *s) => return None,
                    }
                }
                if *stop.borrow() {
                    return None;
                }
                let Ok(now) = counts(&handle, &by).await else {
                    return None;
                };
                if last.as_ref() != Some(&now) {
                    let event = Event::default()
                        .event("counts")
                        .data(serde_json::to_string(&now).unwrap_or_default());
                    return Some((Ok(event), (handle, by, stop, Some(now))));
                }
            }
        },
    )
}

/// `GET /events`.
pub async fn events(State(app): State<App>, headers: HeaderMap) -> Response {
    let visitor = match app.require(&headers, Role::Viewer) {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    Sse::new(stream(app.handle.clone(), visitor.by(), app.stop.clone()))
        .keep_alive(KeepAlive::default())
        .into_response()
}
