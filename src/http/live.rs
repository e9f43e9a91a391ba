//! GraphQL subscriptions over WebSocket: `GET /graphql` with `Upgrade:
//! websocket` and the subprotocol `graphql-transport-ws` (the graphql-ws
//! library's protocol; the legacy `graphql-ws` of subscriptions-transport-ws
//! works too, as async-graphql speaks both).
//!
//! async-graphql runs the protocol (`async_graphql::http::WebSocket`); this
//! module adds what a server must decide around it: which pages may open a
//! socket (the `Origin` check), who is signed in (the token of the
//! `connection_init` payload, checked in the database, and the connection
//! closed when that session ends on any instance), and the limits: sockets
//! per process, subscriptions per socket, message size, the wait for
//! `connection_init`, a client that does not read. What each subscription
//! may run is held to the limits of a request over HTTP.
//!
//! Close codes (the graphql-ws library's meaning in brackets): 4403 the
//! token is missing or does not work, or the session ended or changed
//! [retried: a client whose `connectionParams` is a function sends a fresh
//! token]; 4408 no `connection_init` in time; 1009 a message over the size
//! limit; 1013 the database could not check the token [retried]; 1001 the
//! server is shutting down [retried, reaching another instance]; 1008 the
//! client did not take a message in time.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_graphql::futures_util::stream::{self, BoxStream};
use async_graphql::futures_util::{SinkExt, StreamExt, future};
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols, WsMessage};
use async_graphql::parser::types::OperationType;
use async_graphql::{Data, ErrorExtensions, Executor, Response};
use axum::extract::FromRequestParts;
use axum::extract::Request;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::{AppState, transport_error};
use crate::domain::Principal;
use crate::graphql::context::RequestContext;
use crate::graphql::{AppSchema, Settings, documents::Documents, error, introspection, limits, persisted};
use crate::observability::metrics;
use crate::service::ServiceError;
use crate::service::auth::SessionCache;
use crate::service::live::{Live, Registration, SessionEnded};
use crate::store::Store;

/// The limits of WebSocket connections (their flags are in `app::SubscriptionArgs`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most WebSocket connections open at once in this process.
    pub max_connections: usize,
    /// Most subscriptions running at once on one connection.
    pub max_subscriptions: usize,
    /// How long a new connection may take to send `connection_init`.
    pub init_timeout: Duration,
    /// Largest message a client may send, in bytes.
    pub max_message_bytes: usize,
    /// How long a message may wait for the client to take it.
    pub send_timeout: Duration,
    /// How often the server pings an open connection (keeps proxies from
    /// closing a quiet one); zero: never.
    pub ping_interval: Duration,
}

/// Subscriptions over WebSocket in this process.
pub struct Transport {
    pub live: Live,
    pub limits: Limits,
    /// One permit per open WebSocket connection.
    connections: Arc<Semaphore>,
    /// Becomes true when the server shuts down: every connection closes (1001).
    closing: watch::Receiver<bool>,
}

/// Closes the subscriptions of a server when it shuts down.
pub struct Closer {
    closing: watch::Sender<bool>,
    connections: Arc<Semaphore>,
    max: usize,
}

impl Closer {
    /// Tells every WebSocket connection to close (1001, going away), and
    /// refuses new ones.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Waits up to `grace` for every WebSocket connection to have closed.
    pub async fn closed(&self, grace: Duration) {
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        if tokio::time::timeout(grace, self.connections.acquire_many(all)).await.is_err() {
            tracing::warn!("grace period over; WebSocket connections still open are dropped");
        }
    }
}

impl Transport {
    /// Subscriptions through `live` within `limits`, and what closes them.
    pub fn new(live: Live, limits: Limits) -> (Transport, Closer) {
        let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
        let connections = Arc::new(Semaphore::new(max));
        let (closing, closed) = watch::channel(false);
        let transport = Transport { live, limits, connections: connections.clone(), closing: closed };
        (transport, Closer { closing, connections, max })
    }
}

/// Whether `headers` ask for a WebSocket.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.get(header::UPGRADE).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// Answers an upgrade request: refused (403 for a page of another origin,
/// 400 for a bad handshake or subprotocol, 503 past the connection cap or
/// while shutting down), or switched to the subscription protocol.
pub async fn upgrade(state: AppState, request: Request) -> HttpResponse {
    let Some(transport) = state.live.clone() else {
        let message = "This server does not serve subscriptions (`--subscriptions false`).";
        return transport_error(StatusCode::NOT_FOUND, error::codes::NOT_FOUND, message.into());
    };
    let (mut parts, _) = request.into_parts();
    if !origin_allowed(&parts.headers, &state.browser.cors_origins) {
        let message = "A WebSocket to this server may be opened only by its own pages and the origins it allows \
                       (`--cors-origins`).";
        return transport_error(StatusCode::FORBIDDEN, error::codes::FORBIDDEN, message.into());
    }
    let protocol = parts
        .headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|offered| offered.split(',').find_map(|p| p.trim().parse::<WebSocketProtocols>().ok()));
    let Some(protocol) = protocol else {
        let message = "Offer the WebSocket subprotocol `graphql-transport-ws` (the graphql-ws library does).";
        return transport_error(StatusCode::BAD_REQUEST, error::codes::BAD_REQUEST, message.into());
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let permit = match transport.connections.clone().try_acquire_owned() {
        Ok(permit) if !*transport.closing.borrow() => permit,
        _ => {
            let message = "Too many WebSocket connections on this server now; try again shortly.";
            let mut refused =
                transport_error(StatusCode::SERVICE_UNAVAILABLE, error::codes::SERVICE_UNAVAILABLE, message.into());
            refused.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return refused;
        }
    };
    let executor = Subscriptions {
        schema: state.schema.clone(),
        settings: state.settings,
        store: state.store.clone(),
        sessions: state.sessions.clone(),
        documents: state.documents.clone(),
        max_subscriptions: transport.limits.max_subscriptions,
    };
    let bytes = transport.limits.max_message_bytes;
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(bytes)
        .max_frame_size(bytes)
        // tungstenite's 128 KiB default is allocated per connection; messages here are small.
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .on_upgrade(move |socket| serve(socket, protocol, transport, executor, permit))
}

/// Whether a page of the request's `Origin` may open a socket: a request
/// without one (not from a browser), one of the allowed CORS origins, or
/// the server's own pages (the origin's host is the request's `Host`).
/// Browsers send cookies and other ambient credentials with a WebSocket to
/// any site, and CORS does not apply to it: this check is what keeps other
/// sites' pages out.
fn origin_allowed(headers: &HeaderMap, allowed: &[HeaderValue]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    if allowed.iter().any(|a| a == origin) {
        return true;
    }
    let authority = origin.to_str().ok().and_then(|o| o.split_once("://")).map(|(_, authority)| authority);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

/// What a connection that completed `connection_init` carries, for every
/// subscription it starts.
struct Connection {
    token: String,
    principal: Principal,
    /// Subscriptions running on it now.
    subscriptions: AtomicUsize,
}

/// The bearer token of a `connection_init` payload: `{"Authorization":
/// "Bearer <token>"}`, the same value as the HTTP header (the key in any case).
fn token_of(payload: &serde_json::Value) -> Option<String> {
    let value = payload.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case("authorization"))?.1.as_str()?;
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?.trim();
    (!token.is_empty()).then(|| token.to_string())
}

/// Why `connection_init` was refused: the close code and reason to send.
type Refused = Arc<std::sync::Mutex<Option<(u16, &'static str)>>>;

const NO_TOKEN: &str = "Forbidden: send {\"Authorization\": \"Bearer <token>\"} in connection_init; sign in first";
const BAD_TOKEN: &str = "Forbidden: the session is unknown, expired or signed out; sign in again";
const UNAVAILABLE: &str = "The database could not check the session; try again shortly";
const SESSION_ENDED: &str = "Forbidden: the session ended (signed out, expired or revoked); sign in again";
const SESSION_CHANGED: &str = "Forbidden: the session's user changed; connect again";
const INIT_TIMEOUT: &str = "Connection initialisation timeout";
const GOING_AWAY: &str = "The server is shutting down; connect again";
const TOO_BIG: &str = "Message too big";
const TOO_SLOW: &str = "The client did not take a message in time";

/// Serves one WebSocket until the client leaves, its session ends, a limit
/// is passed, or the server shuts down.
async fn serve(
    socket: WebSocket,
    protocol: WebSocketProtocols,
    transport: Arc<Transport>,
    executor: Subscriptions,
    _permit: OwnedSemaphorePermit,
) {
    let _open = metrics::WebSocketOpen::start();
    let (mut sink, source) = socket.split();
    let too_big = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let input = {
        let too_big = too_big.clone();
        // The first read error ends the input (a message over the size limit is one).
        source
            .scan((), move |(), message| {
                future::ready(match message {
                    Ok(message) => Some(message),
                    Err(error) => {
                        let capacity = error
                            .into_inner()
                            .downcast::<tungstenite::Error>()
                            .is_ok_and(|e| matches!(*e, tungstenite::Error::Capacity(_)));
                        too_big.store(capacity, Ordering::Relaxed);
                        None
                    }
                })
            })
            .filter(|m| future::ready(matches!(m, Message::Text(_) | Message::Binary(_))))
            .map(Message::into_data)
    };
    let (registered, registration) = watch::channel::<Option<Arc<Registration>>>(None);
    let refused: Refused = Arc::default();
    let init = {
        let (live, refused) = (transport.live.clone(), refused.clone());
        move |payload: serde_json::Value| async move {
            let refuse = |code: u16, reason: &'static str| {
                *refused.lock().unwrap_or_else(|e| e.into_inner()) = Some((code, reason));
                async_graphql::Error::new(reason)
            };
            let token = token_of(&payload).ok_or_else(|| refuse(4403, NO_TOKEN))?;
            let registration = live.connect(&token).await.map_err(|e| match e {
                ServiceError::Unauthenticated(_) => refuse(4403, BAD_TOKEN),
                _ => refuse(1013, UNAVAILABLE),
            })?;
            let principal = registration.principal().clone();
            registered.send_replace(Some(Arc::new(registration)));
            let mut data = Data::default();
            data.insert(live);
            data.insert(Arc::new(Connection { token, principal, subscriptions: AtomicUsize::new(0) }));
            Ok(data)
        }
    };
    let protocol_stream = async_graphql::http::WebSocket::new(executor, input, protocol).on_connection_init(init);
    tokio::pin!(protocol_stream);
    let limits = transport.limits;
    let init_deadline = tokio::time::sleep(limits.init_timeout);
    tokio::pin!(init_deadline);
    let mut waiter = registration.clone();
    let ended = async move {
        let registered = waiter.wait_for(Option::is_some).await.ok().and_then(|r| r.clone());
        match registered {
            Some(registration) => registration.ended().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(ended);
    let mut closing = transport.closing.clone();
    let mut ping = (!limits.ping_interval.is_zero())
        .then(|| tokio::time::interval_at(tokio::time::Instant::now() + limits.ping_interval, limits.ping_interval));
    let close: Option<(u16, Cow<'static, str>)> = loop {
        let acked = registration.borrow().is_some();
        tokio::select! {
            message = protocol_stream.next() => match message {
                Some(WsMessage::Text(text)) => {
                    if !send_within(&mut sink, Message::Text(text.into()), limits.send_timeout).await {
                        break Some((1008, TOO_SLOW.into()));
                    }
                }
                // A refused `connection_init` (async-graphql closes with 1002, or ends
                // after `connection_error` in the legacy protocol): say why.
                closed => {
                    let refusal = *refused.lock().unwrap_or_else(|e| e.into_inner());
                    break match (refusal, closed) {
                        (Some((code, why)), _) => Some((code, why.into())),
                        (None, Some(WsMessage::Close(code, reason))) => Some((code, within_a_close_frame(reason).into())),
                        (None, _) if too_big.load(Ordering::Relaxed) => Some((1009, TOO_BIG.into())),
                        (None, _) => None,
                    };
                }
            },
            () = &mut init_deadline, if !acked => break Some((4408, INIT_TIMEOUT.into())),
            why = &mut ended => break Some((4403, match why {
                SessionEnded::Ended => SESSION_ENDED,
                SessionEnded::Changed => SESSION_CHANGED,
            }.into())),
            () = async { let _ = closing.wait_for(|c| *c).await; } => break Some((1001, GOING_AWAY.into())),
            () = tick(&mut ping) => {
                if !send_within(&mut sink, Message::Ping(Default::default()), limits.send_timeout).await {
                    break Some((1008, TOO_SLOW.into()));
                }
            }
        }
    };
    if let Some((code, reason)) = close {
        metrics::record_websocket_close(code);
        let frame = CloseFrame { code, reason: reason.as_ref().into() };
        let _ = send_within(&mut sink, Message::Close(Some(frame)), limits.send_timeout).await;
    }
}

/// Completes at the next ping, when the connection pings.
async fn tick(ping: &mut Option<tokio::time::Interval>) {
    match ping {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// `reason` (a protocol error async-graphql closes with) cut to what a
/// close frame carries (123 bytes).
fn within_a_close_frame(mut reason: String) -> String {
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason.truncate(end);
    reason
}

/// Sends `message`, waiting at most `timeout` for the client to take it.
async fn send_within(
    sink: &mut (impl async_graphql::futures_util::Sink<Message> + Unpin),
    message: Message,
    timeout: Duration,
) -> bool {
    matches!(tokio::time::timeout(timeout, sink.send(message)).await, Ok(Ok(())))
}

/// Runs the subscriptions of a connection: each `subscribe` is held to the
/// limits of a request over HTTP and to the connection's count, and gets a
/// request context of its own with the connection's principal.
#[derive(Clone)]
struct Subscriptions {
    schema: AppSchema,
    settings: Settings,
    store: Store,
    sessions: Arc<SessionCache>,
    documents: Arc<Documents>,
    max_subscriptions: usize,
}

/// One running subscription, counted on its connection until dropped.
struct Running(Arc<Connection>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.subscriptions.fetch_sub(1, Ordering::AcqRel);
        metrics::subscriptions(-1.0);
    }
}

/// An answer with one error and its code, ending a subscription.
fn refusal(code: &str, message: impl Into<String>) -> Box<Response> {
    let error = async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code));
    Box::new(Response::from_errors(vec![error.into_server_error(Default::default())]))
}

impl Subscriptions {
    /// `request` ready to run, or the answer that refuses it.
    fn prepare(
        &self,
        mut request: async_graphql::Request,
        data: &Data,
    ) -> Result<(async_graphql::Request, Running), Box<Response>> {
        let connection = data
            .get(&std::any::TypeId::of::<Arc<Connection>>())
            .and_then(|c| c.downcast_ref::<Arc<Connection>>())
            .cloned()
            .ok_or_else(|| refusal(error::codes::UNAUTHENTICATED, "Send connection_init first."))?;
        let parsed = persisted::parse(&self.documents, &mut request).map_err(|r| refusal(r.code(), r.message()))?;
        if let Some(parsed) = parsed {
            let name = request.operation_name.as_deref();
            if let Err(exceeded) = limits::check(&parsed.document, name, &self.settings) {
                let mut answer = refusal(exceeded.code(), exceeded.message());
                if let Some(ext) = answer.errors[0].extensions.as_mut() {
                    ext.set("limit", exceeded.limit);
                    ext.set("max", exceeded.max as u64);
                }
                return Err(answer);
            }
            if !self.settings.introspection && introspection::requested(&parsed.document) {
                return Err(refusal(error::codes::INTROSPECTION_DISABLED, introspection::REFUSED));
            }
            let ty = crate::graphql::documents::operation_to_run(&parsed.document, name).map(|op| op.node.ty);
            if ty.is_some_and(|ty| ty != OperationType::Subscription) {
                return Err(refusal(
                    error::codes::BAD_REQUEST,
                    "Over WebSocket only subscriptions run; send queries and mutations with POST /graphql.",
                ));
            }
            request.set_parsed_query(parsed.document);
        }
        let count = connection.subscriptions.fetch_add(1, Ordering::AcqRel) + 1;
        metrics::subscriptions(1.0);
        let running = Running(connection);
        if count > self.max_subscriptions {
            let message = format!(
                "A connection runs at most {} subscriptions at once; complete one first, or open another connection.",
                self.max_subscriptions
            );
            return Err(refusal(error::codes::TOO_MANY_SUBSCRIPTIONS, message));
        }
        let connection = &running.0;
        let rcx =
            RequestContext::new(self.store.counting(), self.sessions.clone(), Some(connection.token.clone()), false);
        rcx.adopt(connection.principal.clone());
        Ok((request.data(Arc::new(rcx)), running))
    }
}

impl Executor for Subscriptions {
    async fn execute(&self, _request: async_graphql::Request) -> Response {
        *refusal(error::codes::BAD_REQUEST, "Over WebSocket only subscriptions run.")
    }

    fn execute_stream(&self, request: async_graphql::Request, data: Option<Arc<Data>>) -> BoxStream<'static, Response> {
        let data = data.unwrap_or_default();
        match self.prepare(request, &data) {
            Ok((request, running)) => self
                .schema
                .execute_stream_with_session_data(request, data)
                .map(move |mut response| {
                    let _counted = &running;
                    error::classify(&mut response);
                    response
                })
                .boxed(),
            Err(refused) => stream::once(future::ready(*refused)).boxed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (header::HeaderName::from_static(k), HeaderValue::from_static(v))).collect()
    }

    #[test]
    fn only_the_servers_own_pages_and_the_allowed_origins_may_open_a_socket() {
        let allowed = [HeaderValue::from_static("https://app.example.com")];
        assert!(origin_allowed(&headers(&[("host", "gw:8080")]), &allowed), "not a browser");
        assert!(origin_allowed(&headers(&[("host", "gw:8080"), ("origin", "http://gw:8080")]), &allowed));
        assert!(origin_allowed(&headers(&[("host", "gw:8080"), ("origin", "https://app.example.com")]), &allowed));
        assert!(!origin_allowed(&headers(&[("host", "gw:8080"), ("origin", "https://evil.example")]), &allowed));
        assert!(!origin_allowed(&headers(&[("host", "gw:8080"), ("origin", "http://gw:8081")]), &allowed));
        assert!(!origin_allowed(&headers(&[("host", "gw:8080"), ("origin", "null")]), &allowed));
    }

    #[test]
    fn the_token_comes_from_the_init_payloads_authorization() {
        let payload = |v: serde_json::Value| token_of(&v);
        assert_eq!(payload(serde_json::json!({ "Authorization": "Bearer abc" })).as_deref(), Some("abc"));
        assert_eq!(payload(serde_json::json!({ "authorization": "bearer abc " })).as_deref(), Some("abc"));
        assert_eq!(payload(serde_json::json!({ "Authorization": "abc" })), None);
        assert_eq!(payload(serde_json::json!({ "Authorization": "Bearer " })), None);
        assert_eq!(payload(serde_json::json!(null)), None);
    }
}
