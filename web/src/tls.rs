//! TLS for the page when it is served to an office's network: the certificate and key the
//! configuration names, or — at first start, when it names none — a self-signed certificate
//! made for the node (`web-tls/` in the data folder, key mode 0600) whose SHA-256
//! fingerprint `passerelle start` prints for the officers to check in their browser.
//!
//! Handshakes run beside the accept loop (a slow or silent client never holds the others
//! up) and are given [`HANDSHAKE`] to finish.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::WebError;

/// Longest a client may take to finish its TLS handshake.
pub const HANDSHAKE: Duration = Duration::from_secs(10);
/// The folder of the data folder holding a made certificate and its key.
pub const MADE_DIR: &str = "web-tls";

/// Where the certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// The files the configuration names.
    Files {
        /// The certificate chain (PEM).
        certificate: PathBuf,
        /// Its private key (PEM).
        key: PathBuf,
    },
    /// Made for the node in this folder at first start, and kept.
    Made(PathBuf),
}

/// A server configuration and the certificate's fingerprint.
#[derive(Debug, Clone)]
pub struct Tls {
    pub(crate) config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the certificate, hex pairs separated by `:`.
    pub fingerprint: String,
    /// True when the certificate was made by this start.
    pub made: bool,
}

fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn tls_error(what: impl Into<String>) -> WebError {
    WebError::Tls(what.into())
}

/// Makes a self-signed certificate for `names` in `dir` (the key 0600).
fn make(dir: &Path, names: Vec<String>) -> Result<(), WebError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| tls_error(format!("creating {}: {e}", dir.display())))?;
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|e| tls_error(format!("making a certificate: {e}")))?;
    let key_path = dir.join("key.pem");
    let mut key = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&key_path)
        .map_err(|e| tls_error(format!("writing {}: {e}", key_path.display())))?;
    io::Write::write_all(&mut key, made.key_pair.serialize_pem().as_bytes())
        .and_then(|()| key.sync_all())
        .map_err(|e| tls_error(format!("writing {}: {e}", key_path.display())))?;
    let cert_path = dir.join("cert.pem");
    std::fs::write(&cert_path, made.cert.pem())
        .map_err(|e| tls_error(format!("writing {}: {e}", cert_path.display())))?;
    Ok(())
}

/// The TLS configuration from `source`, made first when it is to be made and is not yet;
/// `names` are what a made certificate is for (host names and addresses).
pub fn load(source: &TlsSource, names: Vec<String>) -> Result<Tls, WebError> {
    let (certificate, key, made) = match source {
        TlsSource::Files { certificate, key } => (certificate.clone(), key.clone(), false),
        TlsSource::Made(dir) => {
            let made = !dir.join("cert.pem").exists();
            if made {
                make(dir, names)?;
            }
            (dir.join("cert.pem"), dir.join("key.pem"), made)
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&certificate)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| tls_error(format!("certificate {}: {e}", certificate.display())))?;
    let first = chain.first().ok_or_else(|| {
        tls_error(format!(
            "certificate {}: no certificate in it (PEM, -----BEGIN CERTIFICATE-----)",
            certificate.display()
        ))
    })?;
    let fingerprint = fingerprint(first.as_ref());
    let private = PrivateKeyDer::from_pem_file(&key)
        .map_err(|e| tls_error(format!("key {}: {e}", key.display())))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tls_error(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(chain, private)
    .map_err(|e| {
        tls_error(format!(
            "certificate {} and key {}: {e}",
            certificate.display(),
            key.display()
        ))
    })?;
    Ok(Tls {
        config: Arc::new(config),
        fingerprint,
        made,
    })
}

/// Connections whose TLS handshake finished, for axum to serve.
pub struct TlsListener {
    finished: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl TlsListener {
    /// Accepts on `listener`, each handshake in a task of its own.
    pub fn new(listener: TcpListener, tls: &Tls) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(tls.config.clone());
        let (done, finished) = mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::debug!(error = %e, "accepting a web connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let done = done.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = done.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "a TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "a TLS handshake took too long"),
                    }
                });
            }
        });
        Ok(Self {
            finished,
            local,
            accepting,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.finished.recv().await {
            Some(finished) => finished,
            // The accepting task ended (the page is stopping): no more connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The address of the visitor, for the sign-in limiter: over TCP or TLS alike.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TcpListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TcpListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}
