//! The server's connections: the accept loop, a cap on open connections,
//! per-connection timeouts and graceful shutdown. hyper serves HTTP/1.1 and
//! HTTP/2 (hyper-util's auto builder) and hyper-util's `GracefulShutdown`
//! drains; what they do not offer is here, kept small: the cap, the idle
//! clock of a connection, and the back-off of the accept loop. (A request
//! body's timeout is the handler's: `http::read_body`.)

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tower::{Service, ServiceExt};

/// Limits and timeouts of the connections (their flags are in `app::Config`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A new connection is closed when no request has arrived (its head
    /// read in full) within this long: idle and slow-header clients.
    pub header_timeout: Duration,
    /// A connection is closed when no request has been open for this long
    /// since its last answer (HTTP/1.1 keep-alive and HTTP/2 alike). It also
    /// bounds reading the head of a request after the first.
    pub keep_alive_timeout: Duration,
    /// Most connections open at once; one more is answered 503 and closed.
    pub max_connections: usize,
    /// How long shutdown waits for the requests in flight.
    pub shutdown_grace: Duration,
}

/// Connections the cap allows by default: 10,000, or three quarters of the
/// open-file limit when that is lower (the rest stays for the database
/// connections, the listener and files).
pub fn default_max_connections(open_file_limit: Option<u64>) -> usize {
    let share = open_file_limit.map_or(u64::MAX, |limit| limit / 4 * 3);
    share.min(10_000) as usize
}

/// Raises the process's soft limit of open files to its hard limit (every
/// connection holds one), logs the outcome and returns the limit in force.
pub fn raise_open_file_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            tracing::info!(limit, "open-file limit raised to its hard limit");
            Some(limit)
        }
        Err(error) => {
            tracing::warn!(%error, "could not raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).ok().map(|(soft, _)| soft)
        }
    }
}

/// Serves `app` on `listener` until `stop` completes; then stops accepting,
/// lets the requests in flight finish for up to `limits.shutdown_grace`, and
/// closes the connections still open.
pub async fn serve<S>(listener: TcpListener, app: S, limits: Limits, stop: impl Future<Output = ()>)
where
    S: Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone + Send + Sync + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The idle clock of each connection bounds the wait for a request head.
    // hyper's own timer would also run on kept connections and close them at
    // the header timeout, so the keep-alive timeout could not be longer.
    builder.http1().header_read_timeout(None);
    let server = Server { app, builder, graceful: GracefulShutdown::new(), limits };
    let mut connections = JoinSet::new();
    let (mut errors, mut refusals) = (AcceptErrors::default(), Throttled::default());
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        while connections.try_join_next().is_some() {}
        match accepted {
            Ok((stream, _)) if connections.len() >= limits.max_connections => {
                errors.accepted();
                if let Some(refused) = refusals.due() {
                    tracing::warn!(refused, max = limits.max_connections, "connection cap reached; refusing (503)");
                }
                tokio::spawn(refuse(stream));
            }
            Ok((stream, peer)) => {
                errors.accepted();
                connections.spawn(server.connection(stream, peer));
            }
            Err(error) => tokio::select! {
                () = errors.back_off(error) => {}
                () = &mut stop => break,
            },
        }
    }
    drop(listener);
    shut_down(server.graceful, connections, limits.shutdown_grace).await;
}

/// What every connection is served with.
struct Server<S> {
    app: S,
    builder: auto::Builder<TokioExecutor>,
    graceful: GracefulShutdown,
    limits: Limits,
}

impl<S> Server<S>
where
    S: Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone + Send + Sync + 'static,
{
    /// Serves one connection until it ends, is idle too long, or shutdown
    /// closes it. Each request carries the connection's `peer` address as
    /// axum's `ConnectInfo` (see `client`).
    fn connection(&self, stream: TcpStream, peer: SocketAddr) -> impl Future<Output = ()> + Send + 'static {
        let activity = Arc::new(Activity::new());
        let app = self.app.clone();
        let requests = activity.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            let open = Open::new(requests.clone());
            let response = app.clone().oneshot(request);
            async move { Ok::<_, Infallible>(response.await?.map(|body| open.until_sent(body))) }
        });
        // With upgrades: a WebSocket (subscriptions) leaves this connection's
        // task, and so its cap and its drain, once switched; `http::live`
        // counts, caps and closes those on its own.
        let conn = self.builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        close_when_idle(self.graceful.watch(conn), activity, self.limits)
    }
}

/// The requests of one connection, as its idle clock needs them: how many
/// are open, whether one ever came, and when the last one was answered.
/// Kept in atomics, so a request costs its connection no wake-up or timer:
/// the clock looks at them only when its timer fires.
struct Activity {
    started: Instant,
    open: AtomicUsize,
    /// Nanoseconds from `started` to the last answer; `NONE` before any request.
    last_answer: AtomicU64,
}

const NONE: u64 = u64::MAX;

impl Activity {
    fn new() -> Self {
        Activity { started: Instant::now(), open: AtomicUsize::new(0), last_answer: AtomicU64::new(NONE) }
    }

    /// When the connection's idle time is up, given `limits`; `None` when a
    /// request is open (look again a keep-alive timeout later).
    fn idle_until(&self, limits: &Limits) -> Option<Instant> {
        if self.open.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(match self.last_answer.load(Ordering::Acquire) {
            NONE => self.started + limits.header_timeout,
            nanos => self.started + Duration::from_nanos(nanos) + limits.keep_alive_timeout,
        })
    }
}

/// Runs a connection and drops it when no request has been open for too
/// long: `header_timeout` before its first request, `keep_alive_timeout`
/// after an answer. Its one timer is looked at, and moved, only when it rings
/// (at the latest a keep-alive timeout after it was last moved).
async fn close_when_idle<E: std::fmt::Display>(
    conn: impl Future<Output = Result<(), E>>,
    activity: Arc<Activity>,
    limits: Limits,
) {
    tokio::pin!(conn);
    // Never set further ahead than the keep-alive timeout: a request that ends before the clock
    // rings would otherwise keep its connection past that timeout.
    let clock = tokio::time::sleep(limits.header_timeout.min(limits.keep_alive_timeout));
    tokio::pin!(clock);
    loop {
        tokio::select! {
            ended = &mut conn => {
                if let Err(error) = ended {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            () = &mut clock => {
                let now = Instant::now();
                match activity.idle_until(&limits) {
                    Some(until) if until <= now => {
                        tracing::debug!(idle = ?now - until, "closing a connection idle for too long");
                        return;
                    }
                    Some(until) => clock.as_mut().reset(until.min(now + limits.keep_alive_timeout).into()),
                    None => clock.as_mut().reset((now + limits.keep_alive_timeout).into()),
                }
            }
        }
    }
}

/// One open request of a connection: counted from its head until its
/// answer's body is dropped (written, or its connection gone).
struct Open(Arc<Activity>);

impl Open {
    fn new(activity: Arc<Activity>) -> Open {
        activity.open.fetch_add(1, Ordering::AcqRel);
        Open(activity)
    }

    /// `body`, keeping the request open until hyper drops the body.
    fn until_sent(self, body: Body) -> impl hyper::body::Body<Data = axum::body::Bytes, Error = axum::Error> + Send {
        body.map_frame(move |frame| {
            let _open = &self;
            frame
        })
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let activity = &self.0;
        let nanos = activity.started.elapsed().as_nanos().min(u128::from(NONE - 1)) as u64;
        activity.last_answer.store(nanos, Ordering::Release);
        activity.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a connection past the cap is answered before it is closed (in
/// HTTP/1.1: an HTTP/2 client with prior knowledge sees a malformed answer,
/// then the close).
const REFUSAL: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\nretry-after: 1\r\n\r\n";

/// How long a refused connection may take to hang up before it is dropped.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// Answers [`REFUSAL`], ends the sending side and reads what the client
/// sent until it hangs up (at most [`REFUSAL_LINGER`]), so that closing
/// does not reset the connection before the client has read the answer.
async fn refuse(mut stream: TcpStream) {
    let answer = async {
        stream.write_all(REFUSAL).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    };
    let _ = tokio::time::timeout(REFUSAL_LINGER, answer).await;
}

/// Closes idle connections and lets the others finish their requests for
/// up to `grace`; then closes the connections still open.
async fn shut_down(graceful: GracefulShutdown, mut connections: JoinSet<()>, grace: Duration) {
    tracing::info!(open = graceful.count(), ?grace, "shutting down: no longer accepting connections");
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(open = connections.len(), "grace period over; closing the connections still open");
    }
    connections.shutdown().await;
}

/// First wait after an accept error; each further error doubles it.
const FIRST_BACK_OFF: Duration = Duration::from_millis(5);
/// Longest wait between two tries to accept.
const MAX_BACK_OFF: Duration = Duration::from_secs(1);
/// A repeated warning is logged at most this often, with its count.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// Errors of the accept loop (e.g. `EMFILE`, out of file descriptors): the
/// loop waits longer after each (up to [`MAX_BACK_OFF`]), until a connection
/// is accepted again.
#[derive(Default)]
struct AcceptErrors {
    delay: Duration,
    log: Throttled,
}

impl AcceptErrors {
    /// Logs `error` (throttled) and waits before the next try.
    async fn back_off(&mut self, error: io::Error) {
        if matches!(error.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset) {
            // The client left before it was accepted: nothing to wait for.
            return;
        }
        self.delay = (self.delay * 2).clamp(FIRST_BACK_OFF, MAX_BACK_OFF);
        if let Some(errors) = self.log.due() {
            tracing::error!(%error, errors, retry_in = ?self.delay, "accepting connections failed");
        }
        tokio::time::sleep(self.delay).await;
    }

    /// A connection was accepted: the next error waits [`FIRST_BACK_OFF`] again.
    fn accepted(&mut self) {
        self.delay = Duration::ZERO;
    }
}

/// A warning logged the first time and then at most every [`LOG_EVERY`],
/// with the number of occurrences since the last line.
#[derive(Default)]
struct Throttled {
    unlogged: u64,
    logged_at: Option<Instant>,
}

impl Throttled {
    /// Counts one occurrence; returns the count to log when a line is due.
    fn due(&mut self) -> Option<u64> {
        self.unlogged += 1;
        if self.logged_at.is_some_and(|at| at.elapsed() < LOG_EVERY) {
            return None;
        }
        self.logged_at = Some(Instant::now());
        Some(std::mem::take(&mut self.unlogged))
    }
}
