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
//!   `X-Frame-Options: DENY`, `nosniff`, no referrer, and `Cache-Control: no-store` (but the
//!   stylesheet and script, versioned by their contents, kept a year).

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
pub mod metrics;
pub mod notify;
mod pages;
mod session;
pub mod tls;

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
    /// `[web] certificate` without `key`, or the other way round.
    #[error("[web] certificate and key: give both (PEM files), or neither to have one made")]
    HalfTls,
    /// TLS cannot be set up.
    #[error("[web] TLS: {0}")]
    Tls(String),
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
    /// TLS: required on any address but a loopback one.
    pub tls: Option<tls::TlsSource>,
}

impl WebConfig {
    /// Plain HTTP on `listen` (a loopback address: tests, this computer only).
    pub fn local(listen: SocketAddr, lang: Lang) -> Self {
        Self {
            listen,
            lang,
            tls: None,
        }
    }

    /// The configuration of `[web]` for the node of `data_dir`, or `None` when the page is
    /// turned off. An address other than a loopback one is served over TLS: with the
    /// configured certificate and key, else one made at first start in
    /// `data_dir/web-tls/`.
    pub fn from_section(
        section: &WebSection,
        lang: Lang,
        data_dir: &std::path::Path,
    ) -> Result<Option<Self>, WebError> {
        if section.enabled == Some(false) {
            return Ok(None);
        }
        let text = section.listen.as_deref().unwrap_or(DEFAULT_WEB_LISTEN);
        let listen: SocketAddr = text
            .parse()
            .map_err(|_| WebError::BadAddress(text.to_owned()))?;
        let wanted = section.tls.unwrap_or(false)
            || !listen.ip().is_loopback()
            || section.certificate.is_some();
        let tls = match (&section.certificate, &section.key) {
            (Some(certificate), Some(key)) => Some(tls::TlsSource::Files {
                certificate: certificate.clone(),
                key: key.clone(),
            }),
            (None, None) if wanted => Some(tls::TlsSource::Made(data_dir.join(tls::MADE_DIR))),
            (None, None) => None,
            _ => return Err(WebError::HalfTls),
        };
        Ok(Some(Self { listen, lang, tls }))
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
    tls: Option<tls::Tls>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningWeb {
    /// Where it is served.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Its address as a browser opens it (`http://…` or `https://…`).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.address)
    }

    /// With TLS: the certificate's SHA-256 fingerprint, and whether this start made it.
    pub fn certificate(&self) -> Option<(&str, bool)> {
        self.tls.as_ref().map(|t| (t.fingerprint.as_str(), t.made))
    }

    /// Stops serving (open pages are answered to the end first).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The routes of the page.
fn router(app: App, https: bool) -> Router {
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
        .route("/referral/{id}/propose", post(pages::referral::propose))
        .route("/referral/{id}/assign", post(pages::referral::assign))
        .route("/events", get(pages::events::events))
        .route("/reports", get(pages::network::reports))
        .route("/members", get(pages::network::members))
        .route("/members/approve", post(pages::network::approve))
        .route("/own", get(pages::own::services))
        .route("/own/capacity", post(pages::own::capacity))
        .route(
            "/own/service/new",
            get(pages::own::service::new_form).post(pages::own::service::add),
        )
        .route(
            "/own/service/{id}",
            get(pages::own::service::edit_form).post(pages::own::service::update),
        )
        .route(
            "/own/service/{id}/remove",
            post(pages::own::service::remove),
        )
        .route(
            "/own/office/new",
            get(pages::own::office::new_form).post(pages::own::office::add),
        )
        .route(
            "/own/office/{id}",
            get(pages::own::office::edit_form).post(pages::own::office::update),
        )
        .route("/own/office/{id}/remove", post(pages::own::office::remove))
        .route("/static/{file}", get(assets::serve))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn(security_headers))
        .layer(axum::middleware::from_fn(
            move |request: Request, next: Next| async move {
                let mut response = next.run(request).await;
                if https {
                    // Once over TLS, a browser never comes back to this host without it.
                    response.headers_mut().insert(
                        header::STRICT_TRANSPORT_SECURITY,
                        HeaderValue::from_static("max-age=31536000"),
                    );
                }
                response
            },
        ))
        // Pages and assets gzipped for slow links (server-sent events are not: each must
        // leave at once). Pages reflect a search and carry a CSRF token, but the session
        // cookie is SameSite=Strict: another site cannot have a signed-in browser fetch
        // them, which is what guessing a token from compressed sizes (BREACH) needs.
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(app)
}

/// Names a made certificate is for: this computer's name, `localhost`, and the address
/// listened on (when it is one address, not "any").
fn certificate_names(listen: SocketAddr) -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty() {
            names.push(host.to_owned());
        }
    }
    if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
        names.push(listen.ip().to_string());
    }
    names
}

/// The headers every answer carries.
async fn security_headers(request: Request, next: Next) -> Response {
    let asset = request.uri().path().starts_with("/static/");
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
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // Nothing is kept by a browser or a proxy but the versioned assets. The notifications'
    // stream too is `no-store` (not the `no-cache` axum gives it): with `no-cache`,
    // Chromium kept the stream of a page left open and the page after a refused form waited
    // a minute for a connection (seen in the browser tests).
    if !asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Serves the page of the node of `handle` until [`RunningWeb::shutdown`].
pub async fn serve(handle: NodeHandle, config: WebConfig) -> Result<RunningWeb, WebError> {
    let tls = config
        .tls
        .as_ref()
        .map(|source| tls::load(source, certificate_names(config.listen)))
        .transpose()?;
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
    let service = router(app, tls.is_some()).into_make_service_with_connect_info::<tls::PeerAddr>();
    let stopping = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    let task = match &tls {
        None => tokio::spawn(async move {
            let served = axum::serve(listener, service)
                .with_graceful_shutdown(stopping)
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "the web page stopped");
            }
        }),
        Some(tls) => {
            let listener =
                tls::TlsListener::new(listener, tls).map_err(|source| WebError::Listen {
                    address: config.listen,
                    source,
                })?;
            tokio::spawn(async move {
                let served = axum::serve(listener, service)
                    .with_graceful_shutdown(stopping)
                    .await;
                if let Err(e) = served {
                    tracing::warn!(error = %e, "the web page stopped");
                }
            })
        }
    };
    tracing::info!(%address, tls = tls.is_some(), "web page served");
    Ok(RunningWeb {
        address,
        tls,
        stop,
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(
        listen: Option<&str>,
        certificate: bool,
        key: bool,
        tls: Option<bool>,
    ) -> WebSection {
        WebSection {
            enabled: None,
            listen: listen.map(str::to_owned),
            certificate: certificate.then(|| "/etc/passerelle/web.crt".into()),
            key: key.then(|| "/etc/passerelle/web.key".into()),
            tls,
        }
    }

    #[test]
    fn a_network_address_is_served_over_tls_and_this_computer_alone_need_not_be() {
        let data = std::path::Path::new("/var/lib/passerelle");
        let read = |s: WebSection| WebConfig::from_section(&s, Lang::Fr, data);
        let local = read(section(None, false, false, None)).unwrap().unwrap();
        assert_eq!(local.listen.to_string(), DEFAULT_WEB_LISTEN);
        assert_eq!(local.tls, None);
        let lan = read(section(Some("0.0.0.0:4691"), false, false, None))
            .unwrap()
            .unwrap();
        assert_eq!(
            lan.tls,
            Some(tls::TlsSource::Made(data.join(tls::MADE_DIR)))
        );
        let given = read(section(Some("192.168.1.10:443"), true, true, None))
            .unwrap()
            .unwrap();
        assert!(matches!(given.tls, Some(tls::TlsSource::Files { .. })));
        let forced = read(section(None, false, false, Some(true)))
            .unwrap()
            .unwrap();
        assert!(forced.tls.is_some());
        assert!(matches!(
            read(section(None, true, false, None)),
            Err(WebError::HalfTls)
        ));
        assert!(matches!(
            read(section(Some("partout"), false, false, None)),
            Err(WebError::BadAddress(_))
        ));
        let off = WebSection {
            enabled: Some(false),
            ..section(None, false, false, None)
        };
        assert!(read(off).unwrap().is_none());
    }
}
