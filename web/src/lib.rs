//! The officers' web page of a Passerelle node: served by `passerelle start` on
//! `127.0.0.1:4691` by default, server-rendered HTML (maud, compiled in; every asset embedded
//! in the binary, no script needed to use it), French by default with English one click
//! away, on top of the same typed API the `passerelle` command uses
//! ([`passerelle_node::control::local_call`]): what an officer does here is answered by the
//! same code, and recorded in the audit log under the officer's account (`web:NAME`).
//!
//! Rules:
//! - Every page but the sign-in page needs a session: a random token in a `HttpOnly`,
//!   `SameSite=Strict` cookie (`Secure` too), ended after [`session::IDLE`] without a request,
//!   [`session::LONGEST`] after sign-in, at sign-out, or when its account is removed.
//! - Every form that changes something carries the session's CSRF token; a form without it,
//!   or with another, is refused (403) and changes nothing.
//! - Sign-in is rate-limited per account name and per address ([`session::Limiter`]).
//! - Roles are enforced here, on the server ([`passerelle_node::accounts::Role`]).
//! - Every answer carries a strict Content-Security-Policy (no inline script or style),
//!   `X-Frame-Options: DENY`, `nosniff`, no referrer, and `Cache-Control: no-store`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use passerelle_node::config::{DEFAULT_WEB_LISTEN, WebSection};
use passerelle_node::node::NodeHandle;
use passerelle_node::reference::Lang;
use tokio::sync::watch;

mod assets;
mod pages;
mod session;

pub use session::{IDLE, LONGEST, MAX_FAILURES};

/// The file of the data folder where `passerelle start` writes the page's address
/// (`http://127.0.0.1:4691`) while it is served.
pub const ADDRESS_FILE: &str = "web.address";

/// Why the web page cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The `[web] listen` address cannot be read.
    #[error("[web] listen: {0:?} is not an address and port such as 127.0.0.1:4691")]
    BadAddress(String),
    /// A non-loopback address without TLS.
    #[error(
        "[web] listen: {0} is not this computer alone; serving the page to a network needs TLS, which this version does not serve yet: listen on 127.0.0.1 (and reach it through an SSH tunnel or a reverse proxy with TLS)"
    )]
    NeedsTls(SocketAddr),
    /// The address cannot be listened on.
    #[error("[web] listen: cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// How the page is served.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Where it listens.
    pub listen: SocketAddr,
    /// The language of pages for a visitor who has not chosen one.
    pub lang: Lang,
}

impl WebConfig {
    /// The configuration of `[web]`, or `None` when the page is turned off.
    pub fn from_section(section: &WebSection, lang: Lang) -> Result<Option<Self>, WebError> {
        if section.enabled == Some(false) {
            return Ok(None);
        }
        let text = section.listen.as_deref().unwrap_or(DEFAULT_WEB_LISTEN);
        let listen: SocketAddr = text
            .parse()
            .map_err(|_| WebError::BadAddress(text.to_owned()))?;
        if !listen.ip().is_loopback() {
            return Err(WebError::NeedsTls(listen));
        }
        Ok(Some(Self { listen, lang }))
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) handle: NodeHandle,
    pub(crate) lang: Lang,
    pub(crate) sessions: Arc<session::Sessions>,
    pub(crate) limiter: Arc<session::Limiter>,
    /// Turns true when the page stops being served (long-lived answers end).
    pub(crate) stop: watch::Receiver<bool>,
}

/// The page, being served.
#[derive(Debug)]
pub struct RunningWeb {
    address: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningWeb {
    /// Where it is served.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops serving (open pages are answered to the end first).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The routes of the page.
fn router(app: App) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login::form).post(pages::login::submit))
        .route("/logout", post(pages::login::logout))
        .route("/directory", get(pages::directory::search))
        .route("/org/{id}", get(pages::directory::organisation))
        .route("/board", get(pages::board::board))
        .route("/refer", get(pages::refer::find))
        .route(
            "/refer/send",
            get(pages::refer::form).post(pages::refer::send),
        )
        .route("/referral/{id}", get(pages::referral::show))
        .route("/referral/{id}/move", post(pages::referral::step))
        .route("/referral/{id}/erase", post(pages::referral::erase))
        .route("/events", get(pages::events::events))
        .route("/reports", get(pages::network::reports))
        .route("/members", get(pages::network::members))
        .route("/members/approve", post(pages::network::approve))
        .route("/static/{file}", get(assets::serve))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(app)
}

/// The headers every answer carries.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Serves the page of the node of `handle` until [`RunningWeb::shutdown`].
pub async fn serve(handle: NodeHandle, config: WebConfig) -> Result<RunningWeb, WebError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| WebError::Listen {
            address: config.listen,
            source,
        })?;
    let address = listener.local_addr().map_err(|source| WebError::Listen {
        address: config.listen,
        source,
    })?;
    let (stop, mut stopped) = watch::channel(false);
    let app = App {
        handle,
        lang: config.lang,
        sessions: Arc::new(session::Sessions::default()),
        limiter: Arc::new(session::Limiter::default()),
        stop: stopped.clone(),
    };
    let service = router(app).into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "the web page stopped");
        }
    });
    tracing::info!(%address, "web page served");
    Ok(RunningWeb {
        address,
        stop,
        task,
    })
}
