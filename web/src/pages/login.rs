//! Signing in and out.

use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use passerelle_node::accounts::Password;
use passerelle_node::directory::fold;
use serde::Deserialize;

use super::{Visitor, page};
use crate::App;
use crate::session::{self, COOKIE, LOGIN_COOKIE, LONGEST};

fn login_page(visitor: &Visitor, csrf: &str, name: &str, error: Option<&str>) -> Markup {
    page(
        visitor,
        visitor.t("Connexion", "Sign in"),
        html! {
            @if let Some(error) = error {
                p.error role="alert" id="login-error" { (error) }
            }
            form.login method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                label for="name" { (visitor.t("Nom d'utilisateur", "User name")) }
                input #name type="text" name="name" value=(name) autocomplete="username"
                    required autofocus;
                label for="password" { (visitor.t("Mot de passe", "Password")) }
                input #password type="password" name="password"
                    autocomplete="current-password" required;
                button type="submit" { (visitor.t("Se connecter", "Sign in")) }
            }
            p.hint { (visitor.t(
                "Un compte est créé par l'administrateur du nœud : passerelle user add NOM --role officer.",
                "An account is made by the node's administrator: passerelle user add NAME --role officer."
            )) }
        },
    )
}

/// `GET /login`: the form, with a fresh CSRF token in its own cookie.
pub async fn form(State(app): State<App>, headers: HeaderMap) -> Response {
    let visitor = app.visitor(&headers);
    if visitor.session.is_some() {
        return Redirect::to("/board").into_response();
    }
    let csrf = session::token();
    (
        [(
            header::SET_COOKIE,
            session::set_cookie(LOGIN_COOKIE, &csrf, "/login", LONGEST),
        )],
        login_page(&visitor, &csrf, "", None),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct Credentials {
    csrf: String,
    name: String,
    password: String,
}

/// `POST /login`.
pub async fn submit(
    State(app): State<App>,
    ConnectInfo(crate::tls::PeerAddr(peer)): ConnectInfo<crate::tls::PeerAddr>,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Response {
    let visitor = app.visitor(&headers);
    if session::cookie(&headers, LOGIN_COOKIE).as_deref() != Some(form.csrf.as_str()) {
        return (
            StatusCode::FORBIDDEN,
            page(
                &visitor,
                visitor.t("Formulaire refusé", "Form refused"),
                html! { p.error role="alert" { (visitor.t(
                    "Ce formulaire n'a pas été envoyé par cette page (jeton manquant ou périmé). Rechargez la page de connexion.",
                    "This form was not sent by this page (its token is missing or stale). Reload the sign-in page."
                )) } },
            ),
        )
            .into_response();
    }
    let keys = vec![
        format!("name:{}", fold(form.name.trim())),
        format!("address:{}", peer.ip()),
    ];
    if let Some(wait) = app.limiter.locked(&keys) {
        let minutes = wait.as_secs().div_ceil(60);
        let message = match visitor.lang {
            passerelle_node::reference::Lang::Fr => {
                format!("Trop de tentatives de connexion : réessayez dans {minutes} minute(s).")
            }
            passerelle_node::reference::Lang::En => {
                format!("Too many sign-in attempts: try again in {minutes} minute(s).")
            }
        };
        return (
            StatusCode::TOO_MANY_REQUESTS,
            login_page(&visitor, &form.csrf, &form.name, Some(&message)),
        )
            .into_response();
    }
    let accounts = match app.handle.accounts() {
        Ok(accounts) => accounts,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };
    let (name, password) = (form.name.trim().to_owned(), Password::new(form.password));
    let checked = tokio::task::spawn_blocking(move || accounts.check(&name, &password)).await;
    match checked {
        Ok(Ok(Some(account))) => {
            app.limiter.succeeded(&keys);
            tracing::info!(account = %account.name, "signed in on the web page");
            let key = app.sessions.open(&account.name, account.role);
            (
                AppendHeaders([
                    (
                        header::SET_COOKIE,
                        session::set_cookie(COOKIE, &key, "/", LONGEST),
                    ),
                    (
                        header::SET_COOKIE,
                        session::set_cookie(LOGIN_COOKIE, "", "/login", Default::default()),
                    ),
                ]),
                Redirect::to("/board"),
            )
                .into_response()
        }
        Ok(Ok(None)) => {
            app.limiter.failed(&keys);
            tracing::info!(address = %peer.ip(), "a sign-in failed on the web page");
            (
                StatusCode::UNAUTHORIZED,
                login_page(
                    &visitor,
                    &form.csrf,
                    &form.name,
                    Some(visitor.t(
                        "Nom d'utilisateur ou mot de passe incorrect.",
                        "Wrong user name or password.",
                    )),
                ),
            )
                .into_response()
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "checking a password failed");
            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
pub struct SignOut {
    csrf: String,
}

/// `POST /logout`.
pub async fn logout(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<SignOut>,
) -> Response {
    let visitor = app.visitor(&headers);
    let Some(key) = session::cookie(&headers, COOKIE).filter(|_| visitor.session.is_some()) else {
        return Redirect::to("/login").into_response();
    };
    if let Err(refused) = super::check_csrf(&visitor, &form.csrf) {
        return *refused;
    }
    app.sessions.close(&key);
    (
        [(
            header::SET_COOKIE,
            session::set_cookie(COOKIE, "", "/", Default::default()),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}
