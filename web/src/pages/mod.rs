//! The pages: the layout every page shares, who is visiting, and one module per page.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use passerelle_node::accounts::Role;
use passerelle_node::api::ApiError;
use passerelle_node::reference::Lang;
use serde::Deserialize;

use crate::App;
use crate::session::{self, COOKIE, LANG_COOKIE, Session};

pub mod board;
pub mod directory;
pub mod events;
pub mod login;
pub mod network;
pub mod own;
pub mod refer;
pub mod referral;

/// Who is visiting, in which language.
pub struct Visitor {
    /// The language of the page.
    pub lang: Lang,
    /// The session, when signed in.
    pub session: Option<Session>,
}

impl Visitor {
    /// French or English text, as the visitor reads.
    pub fn t<'a>(&self, fr: &'a str, en: &'a str) -> &'a str {
        self.lang.pick(en, fr)
    }

    /// The signed-in account's name, for the audit log.
    pub fn by(&self) -> String {
        format!(
            "web:{}",
            self.session.as_ref().map_or("?", |s| s.account.as_str())
        )
    }
}

impl App {
    /// Who is visiting: the chosen language, and the session if it is open and its
    /// account still exists (its role as the accounts say now).
    pub fn visitor(&self, headers: &HeaderMap) -> Visitor {
        let lang = match session::cookie(headers, LANG_COOKIE).as_deref() {
            Some("en") => Lang::En,
            Some("fr") => Lang::Fr,
            _ => self.lang,
        };
        let session = session::cookie(headers, COOKIE).and_then(|key| {
            let mut session = self.sessions.get(&key)?;
            match self
                .handle
                .accounts()
                .map_err(|e| e.to_string())
                .and_then(|a| a.get(&session.account).map_err(|e| e.to_string()))
            {
                Ok(account) => {
                    session.role = account.role;
                    Some(session)
                }
                Err(_) => {
                    self.sessions.close(&key);
                    None
                }
            }
        });
        Visitor { lang, session }
    }

    /// The visitor, if signed in with at least `role`; else the answer to give (the
    /// sign-in page, or "not allowed").
    pub fn require(&self, headers: &HeaderMap, role: Role) -> Result<Visitor, Box<Response>> {
        let visitor = self.visitor(headers);
        match &visitor.session {
            None => Err(Box::new(Redirect::to("/login").into_response())),
            Some(s) if s.role < role => Err(Box::new(
                (
                    StatusCode::FORBIDDEN,
                    page(
                        &visitor,
                        visitor.t("Accès refusé", "Not allowed"),
                        html! {
                            p { (visitor.t(
                                "Votre rôle ne permet pas d'ouvrir cette page.",
                                "Your role does not allow this page."
                            )) }
                        },
                    ),
                )
                    .into_response(),
            )),
            Some(_) => Ok(visitor),
        }
    }
}

/// A page: header with navigation, the language switch and sign-out, then `body`.
pub fn page(visitor: &Visitor, title: &str, body: Markup) -> Markup {
    let lang = match visitor.lang {
        Lang::Fr => "fr",
        Lang::En => "en",
    };
    html! {
        (DOCTYPE)
        html lang=(lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — Passerelle" }
                link rel="stylesheet" href=(*crate::assets::CSS_HREF);
                script src=(*crate::assets::JS_HREF) defer {}
            }
            body {
                header {
                    a.brand href="/" { "Passerelle" }
                    @if let Some(session) = &visitor.session {
                        nav aria-label=(visitor.t("Navigation principale", "Main navigation")) {
                            a href="/board" { (visitor.t("Orientations", "Referrals")) }
                            a href="/directory" { (visitor.t("Annuaire", "Directory")) }
                            @if session.role >= Role::Officer {
                                a href="/refer" { (visitor.t("Orienter", "Refer")) }
                            }
                            a href="/reports" { (visitor.t("Rapports", "Reports")) }
                            a href="/members" { (visitor.t("Membres", "Members")) }
                            @if session.role >= Role::Admin {
                                a href="/own" { (visitor.t("Nos services", "Our services")) }
                            }
                        }
                        form.signout method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(session.csrf);
                            span.who { (session.account) " (" (role_label(visitor, session.role)) ")" }
                            button type="submit" { (visitor.t("Se déconnecter", "Sign out")) }
                        }
                    }
                    div.lang {
                        @match visitor.lang {
                            Lang::Fr => a href="/?lang=en" hreflang="en" lang="en" { "English" },
                            Lang::En => a href="/?lang=fr" hreflang="fr" lang="fr" { "Français" },
                        }
                    }
                }
                @if visitor.session.is_some() {
                    // Filled live by the script from /events: counts and ids only.
                    div #notifications role="status" aria-live="polite" data-events="/events"
                        data-title=(title)
                        data-incoming=(visitor.t("nouvelle(s) orientation(s) reçue(s)", "new incoming referral(s)"))
                        data-case-files=(visitor.t("dossier(s) reçu(s)", "case file(s) received"))
                        data-due-soon=(visitor.t("à traiter sous 24 h", "to answer within 24 h"))
                        data-overdue=(visitor.t("en retard", "overdue"))
                        data-proposals=(visitor.t("proposition(s) sur vos orientations ouvertes", "offer(s) on your open referrals")) {}
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The answer to a form posted without this session's CSRF token: refused, nothing done.
pub fn csrf_refused(visitor: &Visitor) -> Response {
    tracing::warn!(by = %visitor.by(), "a form without its CSRF token was refused");
    (
        StatusCode::FORBIDDEN,
        page(
            visitor,
            visitor.t("Formulaire refusé", "Form refused"),
            html! { p.error role="alert" { (visitor.t(
                "Ce formulaire n'a pas été envoyé par cette page (jeton manquant ou périmé) : rien n'a été fait. Rechargez la page et recommencez.",
                "This form was not sent by this page (its token is missing or stale): nothing was done. Reload the page and try again."
            )) } },
        ),
    )
        .into_response()
}

/// Ok when `csrf` is the visitor's session's token; else the refusal.
pub fn check_csrf(visitor: &Visitor, csrf: &str) -> Result<(), Box<Response>> {
    match &visitor.session {
        Some(session) if !csrf.is_empty() && session.csrf == csrf => Ok(()),
        _ => Err(Box::new(csrf_refused(visitor))),
    }
}

/// A form that asks the node one thing: the visitor must hold `role` and the form carry its
/// session's CSRF token; `request` is `None` when the form names nothing the node knows.
/// Then the browser goes to `back`, or is shown why not.
pub async fn submit<C: passerelle_node::api::Call>(
    app: App,
    headers: HeaderMap,
    role: Role,
    csrf: &str,
    request: Option<C>,
    back: &str,
) -> Response {
    let visitor = match app.require(&headers, role) {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    if let Err(refused) = check_csrf(&visitor, csrf) {
        return *refused;
    }
    let Some(request) = request else {
        return not_found(State(app), headers).await;
    };
    match passerelle_node::control::local_call(&app.handle, request, &visitor.by()).await {
        Ok(_) => Redirect::to(back).into_response(),
        Err(e) => failure(&visitor, &e),
    }
}

/// The first value of `key` among a form's or a query's pairs ("" when absent).
pub fn field(pairs: &[(String, String)], key: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default()
}

/// Every non-empty value of `key` (a repeated field: checkboxes).
pub fn fields(pairs: &[(String, String)], key: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

/// A table's header row: one column heading per (French, English) pair.
pub fn head_row(visitor: &Visitor, columns: &[(&str, &str)]) -> Markup {
    html! {
        thead { tr { @for (fr, en) in columns { th scope="col" { (visitor.t(fr, en)) } } } }
    }
}

/// A role in words.
pub fn role_label(visitor: &Visitor, role: Role) -> &'static str {
    match role {
        Role::Admin => visitor.t("administrateur", "admin"),
        Role::Officer => visitor.t("chargé de dossiers", "officer"),
        Role::Viewer => visitor.t("lecture seule", "viewer"),
    }
}

/// An error of the node, shown in the page's language.
pub fn failure(visitor: &Visitor, error: &ApiError) -> Response {
    let status = match error.kind {
        passerelle_node::api::ErrorKind::NotFound => StatusCode::NOT_FOUND,
        passerelle_node::api::ErrorKind::InvalidInput
        | passerelle_node::api::ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        passerelle_node::api::ErrorKind::Busy => StatusCode::SERVICE_UNAVAILABLE,
        passerelle_node::api::ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (
        status,
        page(
            visitor,
            visitor.t("Erreur", "Error"),
            html! { p.error role="alert" { (error.message_in(visitor.lang)) } },
        ),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct LangChoice {
    lang: Option<String>,
}

/// `/`: the board for a signed-in visitor, else the sign-in page; `?lang=fr|en` sets the
/// language (a cookie) first.
pub async fn home(
    State(app): State<App>,
    headers: HeaderMap,
    Query(choice): Query<LangChoice>,
) -> Response {
    let target = if app.visitor(&headers).session.is_some() {
        "/board"
    } else {
        "/login"
    };
    match choice.lang.as_deref() {
        Some(lang @ ("fr" | "en")) => (
            [(
                header::SET_COOKIE,
                session::set_cookie(
                    LANG_COOKIE,
                    lang,
                    "/",
                    std::time::Duration::from_secs(365 * 24 * 3600),
                ),
            )],
            Redirect::to(target),
        )
            .into_response(),
        _ => Redirect::to(target).into_response(),
    }
}

/// Any other address.
pub async fn not_found(State(app): State<App>, headers: HeaderMap) -> Response {
    let visitor = app.visitor(&headers);
    (
        StatusCode::NOT_FOUND,
        page(
            &visitor,
            visitor.t("Page introuvable", "Page not found"),
            html! { p { a href="/" { (visitor.t("Retour à l'accueil", "Back to the start")) } } },
        ),
    )
        .into_response()
}
