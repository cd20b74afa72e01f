//! The local control API: how the `passerelle` command talks to its running node.
//!
//! Rules:
//! - Transport: a Unix domain socket in the data folder (`control.sock`, mode 0600, in a
//!   folder of mode 0700), so only the node's own user can reach it; it is never reachable
//!   from the network.
//! - Framing: one JSON [`Request`] per line; one JSON response per line, either
//!   `{"ok": …}` or `{"error": {"kind": …, "message": …}}` ([`ApiError`]). A connection may
//!   carry several requests in turn. A line longer than [`MAX_LINE_BYTES`] closes the
//!   connection with an error.
//! - Load: at most [`MAX_CONCURRENT_REQUESTS`] requests are worked on at once; the others
//!   wait their turn in order, up to [`MAX_QUEUE_WAIT`], then are answered `busy`. An idle
//!   connection holds no turn, and is closed after [`IDLE_TIMEOUT`] without a complete
//!   request. Beyond [`MAX_CONNECTIONS`] open connections, a new one is answered `busy`
//!   and closed; the CLI retries a `busy` answer by itself.
//! - The request and response types are shared with the CLI, so both sides always agree.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::directory::SearchQuery;
use crate::document::Edit;
use crate::identity::OrgId;
use crate::node::{NodeError, NodeHandle};

/// Longest request or response line, in bytes.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;
/// Most requests worked on at once; more wait their turn (up to [`MAX_QUEUE_WAIT`]).
pub const MAX_CONCURRENT_REQUESTS: usize = 64;
/// Most control connections open at once; one more is answered "busy" and closed.
pub const MAX_CONNECTIONS: usize = 1024;
/// A connection that sends no complete request for this long is closed.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Longest a request waits for its turn before it is answered "busy".
pub const MAX_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
/// Longest the node waits for a caller to take its answer.
pub const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A request to the node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The node's status ([`crate::node::StatusReport`]).
    Status,
    /// An organisation's profile, offices and services ([`crate::node::OrganisationView`]).
    Organisation {
        /// Which organisation; this node's own if absent.
        #[serde(default)]
        org: Option<OrgId>,
    },
    /// An edit of this node's organisation ([`crate::node::EditReceipt`]).
    Edit {
        /// The edit.
        edit: Edit,
    },
    /// A directory search (a list of [`crate::directory::ServiceHit`]).
    Search {
        /// The query.
        query: SearchQuery,
    },
    /// A document's signed change log (a list of [`crate::document::HistoryEntry`]).
    History {
        /// Which organisation; this node's own if absent.
        #[serde(default)]
        org: Option<OrgId>,
        /// Most entries, newest first.
        limit: usize,
    },
    /// The network: charter, members, proposals, requests ([`crate::node::MembershipView`]).
    Membership,
    /// A membership decision ([`crate::node::DecisionReceipt`]).
    Decide {
        /// The decision.
        decision: crate::node::Decision,
    },
    /// Every organisation record held (a list of [`crate::model::OrganisationRecord`]): the
    /// directory for exports and reports.
    Records,
    /// Writes a backup of every document into a folder ([`crate::backup::export_with`];
    /// a list of [`crate::backup::Exported`]).
    ExportAutomerge {
        /// An absolute path (created if missing).
        dir: std::path::PathBuf,
    },
    /// Verifies a backup folder and merges it ([`crate::backup::import_with`];
    /// [`crate::backup::Imported`]).
    ImportAutomerge {
        /// An absolute path.
        dir: std::path::PathBuf,
        /// Verify only.
        #[serde(default)]
        dry_run: bool,
    },
    /// A referral request ([`crate::node::ReferralReply`]).
    Referral {
        /// What to do.
        referral: crate::node::ReferralRequest,
        /// The operator's name as the CLI knows it (`$USER`), for the audit log; the node
        /// adds the Unix uid of the connecting process.
        #[serde(default)]
        operator: Option<String>,
    },
}

impl Request {
    /// True if the request may write something (an edit, a decision, a referral step, an
    /// import): if the connection breaks before the answer, it may or may not have been
    /// done.
    pub fn writes(&self) -> bool {
        use crate::node::ReferralRequest as R;
        match self {
            Request::Edit { .. } | Request::Decide { .. } => true,
            Request::ImportAutomerge { dry_run, .. } => !dry_run,
            Request::ExportAutomerge { .. } => false,
            Request::Referral { referral, .. } => matches!(
                referral,
                R::Send { .. }
                    | R::Move { .. }
                    | R::Propose { .. }
                    | R::Assign { .. }
                    | R::Erase { .. }
            ),
            Request::Status
            | Request::Organisation { .. }
            | Request::Search { .. }
            | Request::History { .. }
            | Request::Membership
            | Request::Records => false,
        }
    }
}

/// Kinds of error the API returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request's input was refused; nothing was written.
    InvalidInput,
    /// The thing asked for does not exist.
    NotFound,
    /// The request could not be read.
    BadRequest,
    /// The node failed (store, keys, …).
    Internal,
    /// The node has too much to do right now: nothing was done; retry.
    Busy,
}

/// An error the node returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// What kind of error.
    pub kind: ErrorKind,
    /// The field at fault, for invalid input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A message for people.
    pub message: String,
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::Invalid(v) => Self {
                kind: ErrorKind::InvalidInput,
                message: v.to_string(),
                field: Some(v.field),
            },
            NodeError::NotFound(message) => Self {
                kind: ErrorKind::NotFound,
                field: None,
                message,
            },
            other => Self {
                kind: ErrorKind::Internal,
                field: None,
                message: other.to_string(),
            },
        }
    }
}

/// The answer on the wire. The `ok` payload is kept as raw JSON text, so large answers are
/// written and read once, without an intermediate JSON tree.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Response {
    Ok(Box<serde_json::value::RawValue>),
    Error(ApiError),
}

/// Binds the control socket, refusing if a node already answers on it and removing a stale
/// socket file left by a node that was killed.
pub async fn bind(path: &Path) -> Result<UnixListener, NodeError> {
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(NodeError::Io {
                context: format!("control socket {}", path.display()),
                source: std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another node is already running with this data folder",
                ),
            });
        }
        std::fs::remove_file(path).map_err(|source| NodeError::Io {
            context: format!("removing stale control socket {}", path.display()),
            source,
        })?;
    }
    let listener = UnixListener::bind(path).map_err(|source| NodeError::Io {
        context: format!("binding control socket {}", path.display()),
        source,
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
        NodeError::Io {
            context: format!("restricting control socket {}", path.display()),
            source,
        }
    })?;
    Ok(listener)
}

/// Serves control connections until `stop` turns true.
pub async fn serve(listener: UnixListener, handle: NodeHandle, mut stop: watch::Receiver<bool>) {
    let open = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let turns = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_REQUESTS));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Ok(permit) = open.clone().try_acquire_owned() else {
                        warn!("too many control connections; answering busy");
                        // Answered and closed beside the loop, so accepting goes on.
                        if connections.len() < MAX_CONNECTIONS * 2 {
                            connections.spawn(refuse_busy(stream));
                        }
                        continue;
                    };
                    let handle = handle.clone();
                    let stop = stop.clone();
                    let turns = turns.clone();
                    connections.spawn(async move {
                        if let Err(e) = serve_connection(stream, handle, stop, turns).await {
                            debug!(error = %e, "control connection ended");
                        }
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Out of file descriptors, typically: wait a little rather than spin.
                    warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

fn busy(message: &str) -> Response {
    Response::Error(ApiError {
        kind: ErrorKind::Busy,
        field: None,
        message: message.to_owned(),
    })
}

async fn refuse_busy(stream: UnixStream) {
    let (_, mut write) = stream.into_split();
    let answer = busy("the node has too many control connections open; retry in a moment");
    let _ = tokio::time::timeout(WRITE_TIMEOUT, write_line(&mut write, &answer)).await;
}

async fn serve_connection(
    stream: UnixStream,
    handle: NodeHandle,
    mut stop: watch::Receiver<bool>,
    turns: std::sync::Arc<tokio::sync::Semaphore>,
) -> std::io::Result<()> {
    let uid = stream
        .peer_cred()
        .map(|c| format!("uid {}", c.uid()))
        .unwrap_or_else(|_| "uid unknown".into());
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let line = tokio::select! {
            biased;
            _ = stop.changed() => return Ok(()),
            line = tokio::time::timeout(IDLE_TIMEOUT, read_line(&mut reader)) => match line {
                Ok(line) => line,
                Err(_) => {
                    debug!("idle control connection closed");
                    return Ok(());
                }
            },
        };
        let response = match line {
            Ok(None) => return Ok(()),
            Ok(Some(line)) => match serde_json::from_slice::<Request>(&line) {
                Ok(request) => {
                    // Wait for a turn; the turn is held while the request is worked on.
                    match tokio::time::timeout(MAX_QUEUE_WAIT, turns.clone().acquire_owned()).await
                    {
                        Ok(Ok(_turn)) => dispatch(&handle, request, &uid).await,
                        Ok(Err(_)) => return Ok(()),
                        Err(_) => busy("the node is busy with other requests; retry in a moment"),
                    }
                }
                Err(e) => Response::Error(ApiError {
                    kind: ErrorKind::BadRequest,
                    field: None,
                    message: format!("malformed request: {e}"),
                }),
            },
            Err(e) => {
                let response = Response::Error(ApiError {
                    kind: ErrorKind::BadRequest,
                    field: None,
                    message: e.to_string(),
                });
                let _ =
                    tokio::time::timeout(WRITE_TIMEOUT, write_line(&mut write, &response)).await;
                return Err(e);
            }
        };
        tokio::time::timeout(WRITE_TIMEOUT, write_line(&mut write, &response))
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the caller did not read its answer",
                )
            })??;
    }
}

async fn write_line(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    response: &Response,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(response).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    write.flush().await
}

async fn dispatch(handle: &NodeHandle, request: Request, uid: &str) -> Response {
    fn json<T: Serialize>(result: Result<T, NodeError>) -> Response {
        match result {
            Ok(value) => match serde_json::value::to_raw_value(&value) {
                Ok(value) => Response::Ok(value),
                Err(e) => Response::Error(ApiError {
                    kind: ErrorKind::Internal,
                    field: None,
                    message: e.to_string(),
                }),
            },
            Err(e) => Response::Error(e.into()),
        }
    }
    match request {
        Request::Status => json(handle.status().await),
        Request::Organisation { org } => json(handle.organisation(org).await),
        Request::Edit { edit } => json(handle.edit(edit).await),
        Request::Search { query } => json(handle.search(query).await),
        Request::History { org, limit } => json(handle.history(org, limit).await),
        Request::Membership => json(handle.membership().await),
        Request::Decide { decision } => json(handle.decide(decision).await),
        Request::Records => json(handle.records().await),
        Request::ExportAutomerge { dir } => json(crate::backup::export_with(handle, &dir).await),
        Request::ImportAutomerge { dir, dry_run } => {
            json(crate::backup::import_with(handle, &dir, dry_run).await)
        }
        Request::Referral { referral, operator } => {
            let by = match operator {
                Some(name) => format!("{} ({uid})", name.chars().take(64).collect::<String>()),
                None => uid.to_owned(),
            };
            json(handle.referral(referral, by).await)
        }
    }
}

/// Reads one line of at most [`MAX_LINE_BYTES`]; `None` at end of stream.
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if line.is_empty() { None } else { Some(line) });
        }
        let (used, done) = match available.iter().position(|b| *b == b'\n') {
            Some(end) => {
                line.extend_from_slice(&available[..end]);
                (end + 1, true)
            }
            None => {
                line.extend_from_slice(available);
                (available.len(), false)
            }
        };
        reader.consume(used);
        if line.len() > MAX_LINE_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("request longer than {MAX_LINE_BYTES} bytes"),
            ));
        }
        if done {
            return Ok(Some(line));
        }
    }
}

/// Errors of the control client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No node answers on the socket.
    #[error(
        "no node is running for data folder {data_dir} (no answer on {socket}); start it with `passerelle start`"
    )]
    NotRunning {
        /// The data folder.
        data_dir: PathBuf,
        /// The socket tried.
        socket: PathBuf,
    },
    /// The node answered with an error.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The connection failed mid-way.
    #[error("control connection: {0}")]
    Io(#[from] std::io::Error),
    /// The node's answer could not be read.
    #[error("unreadable answer from the node: {0}")]
    Decode(String),
}

/// A connection to a node's control API.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: tokio::net::unix::OwnedWriteHalf,
}

impl Client {
    /// Connects to the node of `data_dir`.
    pub async fn connect(data_dir: &Path) -> Result<Self, ClientError> {
        let socket = crate::config::control_socket(data_dir);
        let mut pause = std::time::Duration::from_millis(10);
        let stream = loop {
            match UnixStream::connect(&socket).await {
                Ok(stream) => break stream,
                // The node's queue of connections to accept is full: it runs, and is busy.
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        && pause < std::time::Duration::from_secs(5) =>
                {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Err(ClientError::Api(ApiError {
                        kind: ErrorKind::Busy,
                        field: None,
                        message: "the node is running but accepts no more control connections right now; retry".into(),
                    }));
                }
                Err(_) => {
                    return Err(ClientError::NotRunning {
                        data_dir: data_dir.to_owned(),
                        socket: socket.clone(),
                    });
                }
            }
        };
        let (read, writer) = stream.into_split();
        Ok(Self {
            reader: BufReader::new(read),
            writer,
        })
    }

    /// Sends `request` and decodes the answer as `T`.
    pub async fn call<T: DeserializeOwned>(&mut self, request: &Request) -> Result<T, ClientError> {
        let mut bytes =
            serde_json::to_vec(request).map_err(|e| ClientError::Decode(e.to_string()))?;
        bytes.push(b'\n');
        self.writer.write_all(&bytes).await?;
        self.writer.flush().await?;
        let line = read_line(&mut self.reader).await?.ok_or_else(|| {
            ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the node closed the connection",
            ))
        })?;
        match serde_json::from_slice::<Response>(&line)
            .map_err(|e| ClientError::Decode(e.to_string()))?
        {
            Response::Ok(value) => {
                serde_json::from_str(value.get()).map_err(|e| ClientError::Decode(e.to_string()))
            }
            Response::Error(e) => Err(ClientError::Api(e)),
        }
    }
}
