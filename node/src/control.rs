//! The local control API: how the `passerelle` command talks to its running node.
//!
//! Rules:
//! - Transport: a Unix domain socket in the data folder (`control.sock`, mode 0660, in a
//!   folder of mode 0700 — 0750 under the Debian package's service, whose group
//!   `passerelle` holds the administrators), so only the node's own user and its group can
//!   reach it; it is never reachable from the network.
//! - Protocol: [`crate::api`]: one JSON request per line, answered by one line (a call) or
//!   by a head, items and an end (a stream). A connection may carry several requests in
//!   turn. A request line longer than [`api::MAX_REQUEST_BYTES`] closes the connection
//!   with an error.
//! - Load: at most [`MAX_CONCURRENT_REQUESTS`] requests are worked on at once; the others
//!   wait their turn in order, up to [`MAX_QUEUE_WAIT`], then are answered `busy`. An idle
//!   connection holds no turn, and is closed after [`IDLE_TIMEOUT`] without a complete
//!   request. Beyond [`MAX_CONNECTIONS`] open connections, a new one is answered `busy`
//!   and closed; the CLI retries a `busy` answer by itself.
//! - [`answer`] turns a request into its answer on a [`NodeHandle`]; the socket server and
//!   any other front end (the web page) share it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::value::RawValue;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::api::{self, ApiError, Call, ErrorKind, Frame, Request, StreamEnd, Streamed};
use crate::node::{NodeError, NodeHandle, ReferralReply, ReferralRequest};

/// Most requests worked on at once; more wait their turn (up to [`MAX_QUEUE_WAIT`]).
pub const MAX_CONCURRENT_REQUESTS: usize = 64;
/// Most control connections open at once; one more is answered "busy" and closed.
pub const MAX_CONNECTIONS: usize = 1024;
/// A connection that sends no complete request for this long is closed.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Longest a request waits for its turn before it is answered "busy".
pub const MAX_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
/// Longest the node waits for a caller to take one line of its answer.
pub const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// An answer, before it is written.
pub enum Answer {
    /// One line.
    One(Frame),
    /// A head, then items made one at a time as they are written.
    Stream {
        /// The head.
        head: Box<RawValue>,
        /// The items, each serialised when its turn comes.
        items: Box<dyn Iterator<Item = serde_json::Result<Box<RawValue>>> + Send>,
    },
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::One(frame) => f.debug_tuple("One").field(frame).finish(),
            Answer::Stream { head, .. } => f.debug_struct("Stream").field("head", head).finish(),
        }
    }
}

fn internal(e: impl std::fmt::Display) -> Frame {
    Frame::Error(ApiError::new(ErrorKind::Internal, e.to_string()))
}

/// The answer to a [`Call`] `_request`: the reply's type is the one the request names.
fn reply<C: Call>(_request: &C, result: Result<C::Reply, NodeError>) -> Answer {
    Answer::One(match result {
        Ok(value) => match serde_json::value::to_raw_value(&value) {
            Ok(value) => Frame::Ok(value),
            Err(e) => internal(e),
        },
        Err(e) => Frame::Error(e.into()),
    })
}

/// The answer to a [`Streamed`] request `_request`.
fn stream<S, I>(_request: &S, result: Result<(S::Head, I), NodeError>) -> Answer
where
    S: Streamed,
    I: IntoIterator<Item = S::Item>,
    I::IntoIter: Send + 'static,
    S::Item: 'static,
{
    match result {
        Ok((head, items)) => match serde_json::value::to_raw_value(&head) {
            Ok(head) => Answer::Stream {
                head,
                items: Box::new(
                    items
                        .into_iter()
                        .map(|item| serde_json::value::to_raw_value(&item)),
                ),
            },
            Err(e) => Answer::One(internal(e)),
        },
        Err(e) => Answer::One(Frame::Error(e.into())),
    }
}

/// Answers `request` on the node of `handle`; `by` names who asks, for the audit log
/// (the caller's account, or its Unix uid).
pub async fn answer(handle: &NodeHandle, request: Request, by: &str) -> Answer {
    let by_operator = |operator: &Option<String>| match operator {
        Some(name) => format!("{} ({by})", name.chars().take(64).collect::<String>()),
        None => by.to_owned(),
    };
    match request {
        Request::Version(r) => reply(
            &r,
            Ok(api::ApiVersion {
                api: api::API_VERSION,
                node: env!("CARGO_PKG_VERSION").to_owned(),
            }),
        ),
        Request::Status(r) => reply(&r, handle.status().await),
        Request::Organisation(r) => reply(&r, handle.organisation(r.org).await),
        Request::Edit(r) => reply(&r, handle.edit(r.edit.clone()).await),
        Request::Search(r) => stream(&r, handle.search(r.query.clone()).await.map(|h| ((), h))),
        Request::History(r) => stream(&r, handle.history(r.org, r.limit).await.map(|h| ((), h))),
        Request::Membership(r) => reply(&r, handle.membership().await),
        Request::Decide(r) => reply(&r, handle.decide(r.decision.clone()).await),
        Request::Records(r) => stream(&r, handle.records(r.directory_only).await.map(|h| ((), h))),
        Request::ExportAutomerge(r) => reply(&r, crate::archive::export_with(handle, &r.dir).await),
        Request::ImportAutomerge(r) => reply(
            &r,
            crate::archive::import_with(handle, &r.dir, r.dry_run).await,
        ),
        Request::ReferralMatch(r) => reply(
            &r,
            referral(
                handle,
                ReferralRequest::Match {
                    query: r.query.clone(),
                },
                by,
                |reply| match reply {
                    ReferralReply::Matches(found) => Some(found),
                    _ => None,
                },
            )
            .await,
        ),
        Request::ReferralSend(r) => {
            let by = by_operator(&r.operator);
            let asked = ReferralRequest::Send {
                send: r.send.clone(),
            };
            reply(&r, referral(handle, asked, by, receipt).await)
        }
        Request::ReferralMove(r) => {
            let by = by_operator(&r.operator);
            let asked = ReferralRequest::Move {
                id: r.id,
                action: r.action,
            };
            reply(&r, referral(handle, asked, by, receipt).await)
        }
        Request::ReferralPropose(r) => {
            let by = by_operator(&r.operator);
            let asked = ReferralRequest::Propose {
                id: r.id,
                service: r.service.clone(),
            };
            reply(&r, referral(handle, asked, by, receipt).await)
        }
        Request::ReferralAssign(r) => {
            let by = by_operator(&r.operator);
            let asked = ReferralRequest::Assign {
                id: r.id,
                org: r.org,
            };
            reply(&r, referral(handle, asked, by, receipt).await)
        }
        Request::ReferralShow(r) => {
            let by = by_operator(&r.operator);
            let asked = ReferralRequest::Show { id: r.id };
            reply(
                &r,
                referral(handle, asked, by, |reply| match reply {
                    ReferralReply::Show(view) => Some(*view),
                    _ => None,
                })
                .await,
            )
        }
        Request::ReferralToOffice(r) => {
            let by = by_operator(&r.operator);
            let asked = ReferralRequest::ToOffice {
                id: r.id,
                office: r.office,
            };
            reply(&r, referral(handle, asked, by, receipt).await)
        }
        Request::ReferralErase(r) => {
            let by = by_operator(&r.operator);
            let asked = ReferralRequest::Erase { id: r.id };
            reply(
                &r,
                referral(handle, asked, by, |reply| match reply {
                    ReferralReply::Erased(receipt) => Some(receipt),
                    _ => None,
                })
                .await,
            )
        }
        Request::ReferralReport(r) => reply(
            &r,
            referral(
                handle,
                ReferralRequest::Report {
                    from: r.from,
                    to: r.to,
                    min_count: r.min_count,
                },
                by,
                |reply| match reply {
                    ReferralReply::Report(report) => Some(report),
                    _ => None,
                },
            )
            .await,
        ),
        Request::Board(r) => {
            let list = handle
                .referral(
                    ReferralRequest::List {
                        filter: r.filter.clone(),
                    },
                    by,
                )
                .await
                .and_then(|reply| match reply {
                    ReferralReply::List(list) => Ok((
                        api::BoardHead {
                            total: list.total,
                            names: list.names,
                            own: list.own,
                            now: list.now,
                            case_files_held: list.case_files_held,
                            destroy_at: list.destroy_at,
                        },
                        list.entries,
                    )),
                    other => Err(unexpected(&other)),
                });
            stream(&r, list)
        }
        Request::Audit(r) => {
            let log = handle
                .referral(ReferralRequest::Audit { id: r.id }, by)
                .await
                .and_then(|reply| match reply {
                    ReferralReply::Audit(entries) => Ok(((), entries)),
                    other => Err(unexpected(&other)),
                });
            stream(&r, log)
        }
        Request::AuditExport(r) => {
            let chain = handle
                .referral(
                    ReferralRequest::AuditChain {
                        from: r.from,
                        to: r.to,
                    },
                    by,
                )
                .await
                .and_then(|reply| match reply {
                    ReferralReply::AuditChain(entries, sealed_by) => Ok((
                        api::AuditHead {
                            organisation: handle.org_id().to_string(),
                            sealed_by,
                        },
                        entries,
                    )),
                    other => Err(unexpected(&other)),
                });
            stream(&r, chain)
        }
        Request::BackupWrite(r) => reply(
            &r,
            referral(
                handle,
                ReferralRequest::BackupWrite { dir: r.dir.clone() },
                by,
                |reply| match reply {
                    ReferralReply::BackupWritten(receipt) => Some(receipt),
                    _ => None,
                },
            )
            .await,
        ),
        Request::BackupRestore(r) => reply(
            &r,
            referral(
                handle,
                ReferralRequest::BackupRestore {
                    file: r.file.clone(),
                    secret: r.secret.clone(),
                },
                by,
                |reply| match reply {
                    ReferralReply::Restored(receipt) => Some(receipt),
                    _ => None,
                },
            )
            .await,
        ),
        Request::Retention(r) => reply(
            &r,
            referral(
                handle,
                ReferralRequest::Retention { run: r.run },
                by,
                |reply| match reply {
                    ReferralReply::Retention(report) => Some(report),
                    _ => None,
                },
            )
            .await,
        ),
        Request::AuditVerify(r) => reply(
            &r,
            referral(
                handle,
                ReferralRequest::AuditVerify,
                by,
                |reply| match reply {
                    ReferralReply::AuditVerdict(verdict) => Some(verdict),
                    _ => None,
                },
            )
            .await,
        ),
        Request::UserAdd(r) => {
            let (name, role, password) = (r.name.clone(), r.role, r.password.clone());
            account_reply(&r, handle, move |a| a.add(&name, role, &password)).await
        }
        Request::UserList(r) => account_reply(&r, handle, |a| a.list()).await,
        Request::UserRemove(r) => {
            let name = r.name.clone();
            account_reply(&r, handle, move |a| a.remove(&name)).await
        }
        Request::UserPassword(r) => {
            let (name, password) = (r.name.clone(), r.password.clone());
            account_reply(&r, handle, move |a| a.set_password(&name, &password)).await
        }
    }
}

/// The answer to an account request, done off the async threads (hashing takes tens of
/// milliseconds by design).
async fn account_reply<C: Call>(
    _request: &C,
    handle: &NodeHandle,
    work: impl FnOnce(crate::accounts::Accounts) -> Result<C::Reply, crate::accounts::AccountError>
    + Send
    + 'static,
) -> Answer
where
    C::Reply: Send + 'static,
{
    let accounts = match handle.accounts() {
        Ok(accounts) => accounts,
        Err(e) => return Answer::One(Frame::Error(e.into())),
    };
    let result = match tokio::task::spawn_blocking(move || work(accounts)).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => Err(ApiError::new(ErrorKind::Internal, e.to_string())),
    };
    Answer::One(match result {
        Ok(value) => match serde_json::value::to_raw_value(&value) {
            Ok(value) => Frame::Ok(value),
            Err(e) => internal(e),
        },
        Err(e) => Frame::Error(e),
    })
}

/// Asks the node of `handle` a [`Call`] in this process, as the control socket would (the
/// same code answers, `by` is recorded in the audit log): for a server in the node's
/// process, such as its web page.
pub async fn local_call<C: Call>(
    handle: &NodeHandle,
    request: C,
    by: &str,
) -> Result<C::Reply, ApiError> {
    match answer(handle, request.into(), by).await {
        Answer::One(Frame::Ok(raw)) => serde_json::from_str(raw.get())
            .map_err(|e| ApiError::new(ErrorKind::Internal, format!("reading the answer: {e}"))),
        Answer::One(Frame::Error(e)) => Err(e),
        _ => Err(ApiError::new(
            ErrorKind::Internal,
            "a call was answered with a stream",
        )),
    }
}

/// Asks the node of `handle` a [`Streamed`] request in this process: its head and every item.
pub async fn local_stream<S: Streamed>(
    handle: &NodeHandle,
    request: S,
    by: &str,
) -> Result<(S::Head, Vec<S::Item>), ApiError> {
    let read = |e: serde_json::Error| {
        ApiError::new(ErrorKind::Internal, format!("reading the answer: {e}"))
    };
    match answer(handle, request.into(), by).await {
        Answer::Stream { head, items } => {
            let head = serde_json::from_str(head.get()).map_err(read)?;
            let items = items
                .map(|item| {
                    item.map_err(read)
                        .and_then(|raw| serde_json::from_str(raw.get()).map_err(read))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((head, items))
        }
        Answer::One(Frame::Error(e)) => Err(e),
        Answer::One(_) => Err(ApiError::new(
            ErrorKind::Internal,
            "a stream was answered with one value",
        )),
    }
}

fn unexpected(reply: &ReferralReply) -> NodeError {
    NodeError::Internal(format!(
        "a referral request was answered with something else: {reply:?}"
    ))
}

/// Asks the documents actor a referral question and keeps the answer `pick` expects.
async fn referral<T>(
    handle: &NodeHandle,
    request: ReferralRequest,
    by: impl Into<String>,
    pick: impl FnOnce(ReferralReply) -> Option<T>,
) -> Result<T, NodeError> {
    let answer = handle.referral(request, by.into()).await?;
    pick(answer).ok_or_else(|| {
        NodeError::Internal("a referral request was answered with something else".into())
    })
}

/// The receipt of a referral step.
fn receipt(reply: ReferralReply) -> Option<crate::node::ReferralReceipt> {
    match reply {
        ReferralReply::Receipt(receipt) => Some(receipt),
        _ => None,
    }
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
    // The node's user and its group: the Debian package's service runs as `passerelle`,
    // and the administrators it adds to that group run commands; nobody else.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(|source| {
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

fn busy(message: &str) -> Frame {
    Frame::Error(ApiError::new(ErrorKind::Busy, message))
}

async fn refuse_busy(stream: UnixStream) {
    let (_, mut write) = stream.into_split();
    let answer = busy("the node has too many control connections open; retry in a moment");
    let _ = write_frame(&mut write, &answer).await;
    let _ = write.flush().await;
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
    let (read, write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut write = BufWriter::new(write);
    loop {
        let line = tokio::select! {
            biased;
            _ = stop.changed() => return Ok(()),
            line = tokio::time::timeout(IDLE_TIMEOUT, read_line(&mut reader, api::MAX_REQUEST_BYTES, "request")) => match line {
                Ok(line) => line,
                Err(_) => {
                    debug!("idle control connection closed");
                    return Ok(());
                }
            },
        };
        let answer = match line {
            Ok(None) => return Ok(()),
            Ok(Some(line)) => match serde_json::from_slice::<Request>(&line) {
                Ok(request) => {
                    // Wait for a turn; the turn is held while the request is worked on.
                    match tokio::time::timeout(MAX_QUEUE_WAIT, turns.clone().acquire_owned()).await
                    {
                        Ok(Ok(_turn)) => answer(&handle, request, &uid).await,
                        Ok(Err(_)) => return Ok(()),
                        Err(_) => Answer::One(busy(
                            "the node is busy with other requests; retry in a moment",
                        )),
                    }
                }
                Err(e) => Answer::One(Frame::Error(ApiError::new(
                    ErrorKind::BadRequest,
                    format!("malformed request: {e}"),
                ))),
            },
            Err(e) => {
                let refusal = Frame::Error(ApiError::new(ErrorKind::BadRequest, e.to_string()));
                let _ = write_frame(&mut write, &refusal).await;
                let _ = tokio::time::timeout(WRITE_TIMEOUT, write.flush()).await;
                return Err(e);
            }
        };
        write_answer(&mut write, answer).await?;
    }
}

/// Writes an answer; a caller that does not take a line of it within [`WRITE_TIMEOUT`]
/// is dropped.
async fn write_answer<W: AsyncWrite + Unpin>(write: &mut W, answer: Answer) -> std::io::Result<()> {
    match answer {
        Answer::One(frame) => write_frame(write, &frame).await?,
        Answer::Stream { head, items } => {
            write_frame(write, &Frame::Head(head)).await?;
            let mut count = 0;
            for item in items {
                match item {
                    Ok(item) => write_frame(write, &Frame::Item(item)).await?,
                    Err(e) => {
                        // Ended with an error: the caller sees the stream was cut short.
                        return write_frame(write, &internal(e)).await;
                    }
                }
                count += 1;
            }
            write_frame(write, &Frame::End(StreamEnd { count })).await?;
        }
    }
    tokio::time::timeout(WRITE_TIMEOUT, write.flush())
        .await
        .map_err(|_| timed_out())?
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the caller did not read its answer",
    )
}

async fn write_frame<W: AsyncWrite + Unpin>(write: &mut W, frame: &Frame) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(frame).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    tokio::time::timeout(WRITE_TIMEOUT, write.write_all(&bytes))
        .await
        .map_err(|_| timed_out())?
}

/// Reads one line of at most `limit` bytes; `None` at end of stream.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    limit: usize,
    what: &str,
) -> std::io::Result<Option<Vec<u8>>> {
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
        if line.len() > limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{what} line longer than {limit} bytes"),
            ));
        }
        if done {
            return Ok(Some(line));
        }
    }
}

/// What to do when this user may not reach a node's folder or socket.
pub const NOT_ALLOWED: &str = "this user may not reach this node: run the command as the node's user, or join its group (the Debian package's: sudo usermod -aG passerelle $USER, then log in again)";

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
    /// This user may not reach the node's folder or socket.
    #[error("{path}: {NOT_ALLOWED}", path = path.display())]
    NotAllowed {
        /// The folder, file or socket.
        path: PathBuf,
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
    /// The running node speaks another version of the API.
    #[error(
        "the running node speaks {node}, this command control API {API}: restart the node with this release (or use the command of the node's release)",
        API = api::API_VERSION
    )]
    Version {
        /// What the node said of its version.
        node: String,
    },
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
                    return Err(ClientError::Api(ApiError::new(
                        ErrorKind::Busy,
                        "the node is running but accepts no more control connections right now; retry",
                    )));
                }
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    return Err(ClientError::NotAllowed {
                        path: socket.clone(),
                    });
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

    async fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        let mut bytes =
            serde_json::to_vec(request).map_err(|e| ClientError::Decode(e.to_string()))?;
        bytes.push(b'\n');
        self.writer.write_all(&bytes).await?;
        self.writer.flush().await?;
        Ok(())
    }

    async fn frame(&mut self) -> Result<Frame, ClientError> {
        let line = read_line(&mut self.reader, api::MAX_FRAME_BYTES, "answer")
            .await?
            .ok_or_else(|| {
                ClientError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the node closed the connection",
                ))
            })?;
        serde_json::from_slice::<Frame>(&line).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// A request the node could not read, or an answer of another shape, is most often a
    /// node of another release: say so when it is.
    async fn explain(&mut self, error: ClientError) -> ClientError {
        let suspicious = matches!(
            &error,
            ClientError::Decode(_)
                | ClientError::Api(ApiError {
                    kind: ErrorKind::BadRequest,
                    ..
                })
        );
        if !suspicious {
            return error;
        }
        let asked: Result<api::ApiVersion, ClientError> =
            Box::pin(self.call_once(api::Version {})).await;
        match asked {
            Ok(version) if version.api == api::API_VERSION => error,
            Ok(version) => ClientError::Version {
                node: format!("control API {} (passerelle {})", version.api, version.node),
            },
            Err(ClientError::Api(ApiError {
                kind: ErrorKind::BadRequest,
                ..
            }))
            | Err(ClientError::Decode(_)) => ClientError::Version {
                node: "an older control API (1)".into(),
            },
            Err(_) => error,
        }
    }

    async fn call_once<C: Call>(&mut self, request: C) -> Result<C::Reply, ClientError> {
        self.send(&request.into()).await?;
        match self.frame().await? {
            Frame::Ok(value) => {
                serde_json::from_str(value.get()).map_err(|e| ClientError::Decode(e.to_string()))
            }
            Frame::Error(e) => Err(ClientError::Api(e)),
            other => Err(ClientError::Decode(format!(
                "expected one answer, got {}",
                frame_kind(&other)
            ))),
        }
    }

    /// Sends a [`Call`] and reads its reply.
    pub async fn call<C: Call>(&mut self, request: C) -> Result<C::Reply, ClientError> {
        match self.call_once(request).await {
            Ok(reply) => Ok(reply),
            Err(e) => Err(self.explain(e).await),
        }
    }

    /// Sends a [`Streamed`] request and reads its head; the items follow with
    /// [`Items::next`].
    pub async fn stream<S: Streamed>(&mut self, request: S) -> Result<Items<'_, S>, ClientError> {
        let head = async {
            self.send(&request.into()).await?;
            match self.frame().await? {
                Frame::Head(head) => serde_json::from_str::<S::Head>(head.get())
                    .map_err(|e| ClientError::Decode(e.to_string())),
                Frame::Error(e) => Err(ClientError::Api(e)),
                other => Err(ClientError::Decode(format!(
                    "expected the head of a stream, got {}",
                    frame_kind(&other)
                ))),
            }
        }
        .await;
        match head {
            Ok(head) => Ok(Items {
                client: self,
                head,
                received: 0,
                done: false,
            }),
            Err(e) => Err(self.explain(e).await),
        }
    }

    /// Sends a [`Streamed`] request and reads the whole answer.
    pub async fn collect<S: Streamed>(
        &mut self,
        request: S,
    ) -> Result<(S::Head, Vec<S::Item>), ClientError> {
        let mut items = self.stream(request).await?;
        let mut all = Vec::new();
        while let Some(item) = items.next().await? {
            all.push(item);
        }
        Ok((items.into_head(), all))
    }
}

fn frame_kind(frame: &Frame) -> &'static str {
    match frame {
        Frame::Ok(_) => "a single answer",
        Frame::Head(_) => "the head of a stream",
        Frame::Item(_) => "an item",
        Frame::End(_) => "the end of a stream",
        Frame::Error(_) => "an error",
    }
}

/// The items of a streamed answer, read as they come.
#[derive(Debug)]
pub struct Items<'a, S: Streamed> {
    client: &'a mut Client,
    head: S::Head,
    received: u64,
    done: bool,
}

impl<S: Streamed> Items<'_, S> {
    /// The head, read before the items.
    pub fn head(&self) -> &S::Head {
        &self.head
    }

    /// The head, kept once the items are read.
    pub fn into_head(self) -> S::Head {
        self.head
    }

    /// The next item; `None` at the end of a complete stream. A stream the node ended
    /// with an error, or that ended before the count it announced, is an error.
    pub async fn next(&mut self) -> Result<Option<S::Item>, ClientError> {
        if self.done {
            return Ok(None);
        }
        let frame = self.client.frame().await;
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                self.done = true;
                return Err(e);
            }
        };
        match frame {
            Frame::Item(item) => {
                self.received += 1;
                serde_json::from_str(item.get())
                    .map(Some)
                    .map_err(|e| ClientError::Decode(e.to_string()))
            }
            Frame::End(StreamEnd { count }) if count == self.received => {
                self.done = true;
                Ok(None)
            }
            Frame::End(StreamEnd { count }) => {
                self.done = true;
                Err(ClientError::Decode(format!(
                    "the node announced {count} items and sent {}",
                    self.received
                )))
            }
            Frame::Error(e) => {
                self.done = true;
                Err(ClientError::Api(e))
            }
            other => {
                self.done = true;
                Err(ClientError::Decode(format!(
                    "expected an item, got {}",
                    frame_kind(&other)
                )))
            }
        }
    }
}
