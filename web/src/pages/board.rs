//! The referral board: incoming, outgoing, overdue, open referrals to propose on, or all.
//! The board holds no personal data (case files travel apart); a viewer sees it too.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::html;
use passerelle_node::accounts::Role;
use passerelle_node::api;
use passerelle_node::control::local_stream;
use passerelle_node::node::ListFilter;
use passerelle_node::reference::taxonomy;
use passerelle_node::referral::board::BoardEntry;
use passerelle_node::referral::lifecycle::Status;
use serde::Deserialize;

use super::{Visitor, failure, page};
use crate::App;

/// Most entries shown on one page (newest first).
pub const SHOWN: usize = 200;

/// Which referrals.
#[derive(Debug, Default, Deserialize)]
pub struct View {
    #[serde(default)]
    view: String,
}

pub fn status_text(visitor: &Visitor, status: Status) -> &'static str {
    match status {
        Status::Pending => visitor.t("En attente de réponse", "Awaiting an answer"),
        Status::Accepted => visitor.t("Acceptée", "Accepted"),
        Status::Declined => visitor.t("Refusée", "Declined"),
        Status::Withdrawn => visitor.t("Retirée", "Withdrawn"),
        Status::InProgress => visitor.t("En cours", "In progress"),
        Status::Waitlisted => visitor.t("Sur liste d'attente", "Waitlisted"),
        Status::Completed => visitor.t("Terminée", "Completed"),
        Status::Failed => visitor.t("Échouée", "Failed"),
        Status::Expired => visitor.t("Expirée", "Expired"),
        Status::EnteredInError => visitor.t("Saisie par erreur", "Entered in error"),
    }
}

/// A date as people read it (UTC, to the minute): `2026-12-07 14:05`.
pub fn date(seconds: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds.max(0) as u64);
    let text = humantime::format_rfc3339_seconds(time).to_string();
    text.get(..16).unwrap_or(&text).replacen('T', " ", 1)
}

/// `GET /board`.
pub async fn board(
    State(app): State<App>,
    headers: HeaderMap,
    Query(view): Query<View>,
) -> Response {
    let visitor = match app.require(&headers, Role::Viewer) {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    let mut filter = ListFilter {
        limit: Some(SHOWN),
        ..Default::default()
    };
    let chosen = match view.view.as_str() {
        "outgoing" => {
            filter.outgoing = true;
            "outgoing"
        }
        "overdue" => {
            filter.overdue = true;
            "overdue"
        }
        "open" => {
            filter.open = true;
            "open"
        }
        "all" => "all",
        _ => {
            filter.incoming = true;
            "incoming"
        }
    };
    let (head, entries): (api::BoardHead, Vec<BoardEntry>) =
        match local_stream(&app.handle, api::Board { filter }, &visitor.by()).await {
            Ok(answer) => answer,
            Err(e) => return failure(&visitor, &e),
        };
    let name = |org: &passerelle_node::identity::OrgId| {
        head.names
            .get(org)
            .cloned()
            .unwrap_or_else(|| org.to_string())
    };
    let officer = visitor
        .session
        .as_ref()
        .is_some_and(|s| s.role >= Role::Officer);
    let tabs = [
        ("incoming", visitor.t("Reçues", "Incoming")),
        ("outgoing", visitor.t("Envoyées", "Outgoing")),
        ("overdue", visitor.t("En retard", "Overdue")),
        (
            "open",
            visitor.t("Ouvertes à proposition", "Open to offers"),
        ),
        ("all", visitor.t("Toutes", "All")),
    ];
    page(
        &visitor,
        visitor.t("Tableau des orientations", "Referral board"),
        html! {
            nav.tabs aria-label=(visitor.t("Vues du tableau", "Board views")) {
                @for (key, label) in tabs {
                    a href={ "/board?view=" (key) } aria-current=[(key == chosen).then_some("page")] { (label) }
                }
            }
            p.count role="status" id="board-count" {
                (head.total) " " (visitor.t("orientation(s)", "referral(s)"))
                @if head.total > entries.len() {
                    " — " (entries.len()) " " (visitor.t("plus récentes affichées", "newest shown"))
                }
            }
            @if !entries.is_empty() {
                table.results.board {
                    (super::head_row(&visitor, &[("Orientation", "Referral"), ("De", "From"), ("Vers", "To"), ("Besoin", "Need"), ("Statut", "Status"), ("Réponse attendue avant", "Answer due")]))
                    tbody {
                        @for entry in &entries {
                            tr.overdue[entry.overdue(head.now)] {
                                td {
                                    @if officer {
                                        a href={ "/referral/" (entry.id) } { code { (entry.id) } }
                                    } @else {
                                        code { (entry.id) }
                                    }
                                }
                                td { (name(&entry.sender)) }
                                td {
                                    @match &entry.receiver {
                                        Some(org) => (name(org)),
                                        None => em { (visitor.t("ouverte", "open")) },
                                    }
                                }
                                td { (taxonomy::category(&entry.category).map_or(entry.category.as_str(), |c| c.label(visitor.lang))) }
                                td { (status_text(&visitor, entry.status)) }
                                td { (date(entry.deadline)) }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_read_as_people_read_them() {
        assert_eq!(super::date(0), "1970-01-01 00:00");
        assert_eq!(super::date(1_796_601_600 + 3_660), "2026-12-07 01:01");
        assert_eq!(super::date(951_782_400), "2000-02-29 00:00");
    }
}
