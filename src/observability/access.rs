//! The access line: one `info` event per request (target
//! `license_gateway::access`) with its request id, method, path, status,
//! and for GraphQL its operation, principal kind, outcome and SQL
//! statement count, and its duration. Never a token or a password.

use std::cell::Cell;
use std::time::{Duration, Instant};

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument};
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tower_http::request_id::{MakeRequestId, RequestId};

use super::metrics;
use crate::domain::Principal;

/// The header that carries the request id, in and out.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest incoming request id taken as it is; a longer one is replaced.
const MAX_REQUEST_ID: usize = 64;

/// Most bytes of a request's path the access line shows.
const MAX_PATH: usize = 256;

/// Who made a request, as far as the request needed to know: never the
/// token, nor whose it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// No bearer token sent.
    Anonymous,
    /// Not checked: nothing the request did needed the token it sent, or
    /// the request was refused before it was read.
    Unchecked,
    /// The token was checked and does not open a session.
    Unauthenticated,
    /// A vendor operator.
    Operator,
    /// A site login with administrator rights.
    SiteAdministrator,
    /// A site login without administrator rights.
    SiteUser,
    /// An agreement owner's account.
    Owner,
}

impl PrincipalKind {
    /// The kind of a resolved principal.
    pub fn of(principal: &Principal) -> Self {
        match principal {
            Principal::Operator { .. } => PrincipalKind::Operator,
            Principal::SiteLogin { is_admin: true, .. } => PrincipalKind::SiteAdministrator,
            Principal::SiteLogin { is_admin: false, .. } => PrincipalKind::SiteUser,
            Principal::Owner { .. } => PrincipalKind::Owner,
        }
    }

    /// How the access line names it.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Anonymous => "anonymous",
            PrincipalKind::Unchecked => "unchecked",
            PrincipalKind::Unauthenticated => "unauthenticated",
            PrincipalKind::Operator => "operator",
            PrincipalKind::SiteAdministrator => "site_administrator",
            PrincipalKind::SiteUser => "site_user",
            PrincipalKind::Owner => "owner",
        }
    }
}

/// How a GraphQL request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answered without errors or refusals.
    Ok,
    /// A change was refused as data (the first refusal's code).
    Refused(&'static str),
    /// Top-level errors (the first one's `extensions.code`).
    Error(String),
}

impl Outcome {
    /// `ok`, `refused` or `error`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused(_) => "refused",
            Outcome::Error(_) => "error",
        }
    }

    /// The refusal's or the error's code; empty when ok.
    pub fn code(&self) -> &str {
        match self {
            Outcome::Ok => "",
            Outcome::Refused(code) => code,
            Outcome::Error(code) => code,
        }
    }
}

/// What the GraphQL handler tells the access line and the request metrics,
/// in the extensions of its response.
#[derive(Debug, Clone)]
pub struct RequestSummary {
    /// The operation's name ([`operation_name`]).
    pub operation: String,
    pub principal: PrincipalKind,
    pub outcome: Outcome,
    /// SQL statements the request ran.
    pub statements: u64,
}

/// The operation name of a request whose body was never read as GraphQL.
const NO_OPERATION: &str = "unknown";

impl RequestSummary {
    /// The summary of an executed request: `refused` is the first refusal
    /// [`refusals_during`] saw; the response's first error wins over it.
    pub fn new(
        operation: String,
        principal: PrincipalKind,
        response: &async_graphql::Response,
        refused: Option<&'static str>,
        statements: u64,
    ) -> Self {
        let outcome = match (response.errors.first(), refused) {
            (Some(error), _) => Outcome::Error(error_code(error)),
            (None, Some(code)) => Outcome::Refused(code),
            (None, None) => Outcome::Ok,
        };
        RequestSummary { operation, principal, outcome, statements }
    }

    /// The summary of a request answered with the error `code` instead of
    /// an execution's response (over a limit, past its deadline).
    pub fn failed(operation: String, principal: PrincipalKind, code: &str, statements: u64) -> Self {
        RequestSummary { operation, principal, outcome: Outcome::Error(code.into()), statements }
    }

    /// The summary of a request refused before its body was read as GraphQL
    /// (too large, not JSON, ...), answered with `code`.
    pub fn rejected(code: &str) -> Self {
        RequestSummary::failed(NO_OPERATION.into(), PrincipalKind::Unchecked, code, 0)
    }
}

/// The name of the operation a request runs: the `operationName` it sent,
/// or else the name of the only operation of its document (`anonymous`
/// when it has none).
pub fn operation_name(sent: Option<&str>, document: Option<&ExecutableDocument>) -> String {
    let named = || match document.map(|d| &d.operations) {
        Some(DocumentOperations::Multiple(operations)) if operations.len() == 1 => {
            operations.keys().next().map(|name| name.as_str())
        }
        _ => None,
    };
    sent.or_else(named).unwrap_or("anonymous").to_string()
}

fn error_code(error: &async_graphql::ServerError) -> String {
    match error.extensions.as_ref().and_then(|e| e.get("code")) {
        Some(async_graphql::Value::String(code)) => code.clone(),
        _ => "UNKNOWN".into(),
    }
}

tokio::task_local! {
    /// The first refusal noted while a request's GraphQL runs.
    static REFUSED: Cell<Option<&'static str>>;
}

/// Runs `work` (a request's execution) and returns what it returned with the
/// code of the first refusal noted meanwhile ([`note_refusal`]).
pub async fn refusals_during<F: Future>(work: F) -> (F::Output, Option<&'static str>) {
    REFUSED
        .scope(Cell::new(None), async {
            let output = work.await;
            (output, REFUSED.with(Cell::get))
        })
        .await
}

/// Notes a refusal for the request being executed, if any.
pub(super) fn note_refusal(code: &'static str) {
    let _ = REFUSED.try_with(|first| {
        if first.get().is_none() {
            first.set(Some(code));
        }
    });
}

/// Makes a request id: 16 random hex digits.
#[derive(Clone, Copy)]
pub struct MakeId;

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let id = format!("{:016x}", rand::random::<u64>());
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// Whether an incoming request id is taken as it is: short, and only
/// letters, digits and `-_.:`, so it is safe in any log line.
fn usable_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Removes an incoming `x-request-id` that is not usable, so that one is made instead.
pub async fn drop_unusable_request_id(mut request: Request) -> Request {
    if request.headers().get_all(REQUEST_ID_HEADER).iter().any(|v| !usable_request_id(v)) {
        request.headers_mut().remove(REQUEST_ID_HEADER);
    }
    request
}

/// Counts the request as in flight until it is dropped (answered or abandoned).
struct InFlight;

impl InFlight {
    fn start() -> Self {
        metrics::in_flight(1.0);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::in_flight(-1.0);
    }
}

/// The middleware: runs the request, then writes its access line and, for
/// a GraphQL request, its metrics.
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let _in_flight = InFlight::start();
    let method = request.method().clone();
    let uri = request.uri().clone();
    let id = request.headers().get(REQUEST_ID_HEADER).cloned();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let summary = response.extensions().get::<RequestSummary>();
    if let Some(summary) = summary {
        metrics::record_request(summary, elapsed);
    }
    let id = id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-");
    let path = uri.path();
    let path = path.get(..MAX_PATH).unwrap_or(path);
    write_line(id, &method, path, response.status().as_u16(), summary, elapsed);
    response
}

/// Milliseconds, to the microsecond.
fn millis(elapsed: Duration) -> f64 {
    elapsed.as_micros() as f64 / 1000.0
}

fn write_line(
    request_id: &str,
    method: &axum::http::Method,
    path: &str,
    status: u16,
    summary: Option<&RequestSummary>,
    elapsed: Duration,
) {
    let method = method.as_str();
    let duration_ms = millis(elapsed);
    match summary {
        Some(s) => tracing::info!(
            target: "license_gateway::access",
            request_id,
            method,
            path,
            status,
            operation = loggable_operation(&s.operation),
            principal = s.principal.as_str(),
            outcome = s.outcome.as_str(),
            code = s.outcome.code(),
            statements = s.statements,
            duration_ms,
            "request"
        ),
        None => {
            tracing::info!(target: "license_gateway::access", request_id, method, path, status, duration_ms, "request")
        }
    }
}

/// The operation name as the access line shows it: as sent when it is a
/// GraphQL name of reasonable length, otherwise `invalid`.
fn loggable_operation(name: &str) -> &str {
    if metrics::is_short_name(name) { name } else { "invalid" }
}
