//! The access line: one `info` event per request (target
//! `license_gateway::access`) with its request id, method, path, status,
//! and for GraphQL its operation, principal kind, outcome and SQL
//! statement count, and its duration. Never a token or a password.

use std::cell::Cell;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument};
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use tower::{Layer, Service};

use super::logs::{self, LogFormat};
use super::metrics;
use crate::domain::Principal;

/// The header that carries the request id, in and out.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

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

/// The request's id: its incoming `x-request-id` when that is usable,
/// otherwise a new one of 16 random hex digits.
fn request_id(request: &Request) -> HeaderValue {
    match request.headers().get(REQUEST_ID_HEADER) {
        Some(sent) if usable_request_id(sent) => sent.clone(),
        _ => {
            let random = rand::random::<u64>();
            let digits: [u8; 16] = std::array::from_fn(|i| HEX[(random >> (60 - 4 * i)) as usize & 0xf]);
            HeaderValue::from_bytes(&digits).expect("hex digits are a header value")
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether an incoming request id is taken as it is: short, and only
/// letters, digits and `-_.:`, so it is safe in any log line.
fn usable_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
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

/// The layer that observes every request: it gives the request its id
/// (echoed in `x-request-id`), runs it, then writes its access line and,
/// for a GraphQL request, its metrics.
#[derive(Clone, Copy, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe(inner)
    }
}

/// The service of [`ObserveLayer`].
#[derive(Clone)]
pub struct Observe<S>(S);

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let in_flight = InFlight::start();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let id = request_id(&request);
        let answer = self.0.call(request);
        Box::pin(async move {
            let Ok(mut response) = answer.await;
            drop(in_flight);
            let elapsed = started.elapsed();
            let summary = response.extensions().get::<RequestSummary>();
            if let Some(summary) = summary {
                metrics::record_request(summary, elapsed);
            }
            let path = path.get(..MAX_PATH).unwrap_or(&path);
            write_line(id.to_str().unwrap_or("-"), &method, path, response.status().as_u16(), summary, elapsed);
            response.headers_mut().insert(REQUEST_ID_HEADER, id);
            Ok(response)
        })
    }
}

/// Milliseconds, to the microsecond.
fn millis(elapsed: Duration) -> f64 {
    elapsed.as_micros() as f64 / 1000.0
}

fn as_millis<S: serde::Serializer>(elapsed: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(millis(*elapsed))
}

fn write_line(
    request_id: &str,
    method: &axum::http::Method,
    path: &str,
    status: u16,
    summary: Option<&RequestSummary>,
    elapsed: Duration,
) {
    if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        return;
    }
    let line = Line {
        timestamp: Timestamp,
        level: "INFO",
        message: "request",
        target: TARGET,
        request_id,
        method: method.as_str(),
        path,
        status,
        graphql: summary.map(|s| GraphqlFields {
            operation: loggable_operation(&s.operation),
            principal: s.principal.as_str(),
            outcome: s.outcome.as_str(),
            code: s.outcome.code(),
            statements: s.statements,
        }),
        duration_ms: elapsed,
    };
    if !logs::write_access_line(|format, out| line.write(format, out)) {
        line.through_tracing();
    }
}

/// The target of access lines (`RUST_LOG=license_gateway::access=off` turns them off).
const TARGET: &str = "license_gateway::access";

/// One access line. Written straight to the log writer, in the same form as
/// the `tracing` subscriber writes events (text or JSON), because the
/// subscriber's general formatting would cost a busy server several times
/// what the request itself costs; through `tracing` only when the process
/// has no log writer of its own (a server inside a test).
#[derive(serde::Serialize)]
struct Line<'a> {
    timestamp: Timestamp,
    level: &'static str,
    message: &'static str,
    target: &'static str,
    request_id: &'a str,
    method: &'a str,
    path: &'a str,
    status: u16,
    /// What a GraphQL request adds (none for other requests).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    graphql: Option<GraphqlFields<'a>>,
    /// Milliseconds to the microsecond (a number in JSON).
    #[serde(serialize_with = "as_millis")]
    duration_ms: Duration,
}

/// The fields of a GraphQL request's access line.
#[derive(serde::Serialize)]
struct GraphqlFields<'a> {
    operation: &'a str,
    principal: &'static str,
    outcome: &'static str,
    code: &'a str,
    statements: u64,
}

/// The current time as RFC 3339 in UTC, to the microsecond, as `tracing`'s
/// lines show it.
struct Timestamp;

thread_local! {
    /// The second this thread last wrote a timestamp in, and that timestamp
    /// up to its seconds (`2026-12-07T19:31:16`): the date and time are
    /// worked out once a second, not once a line.
    static SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
}

impl Timestamp {
    /// Appends the current time to `out`.
    fn write(out: &mut Vec<u8>) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let (seconds, micros) = (now.as_secs(), now.subsec_micros());
        let (second, mut text) = SECOND.get();
        if second != seconds {
            text = Self::to_the_second(seconds);
            SECOND.set((seconds, text));
        }
        out.extend_from_slice(&text);
        out.push(b'.');
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(micros);
        out.extend(std::iter::repeat_n(b'0', 6 - digits.len()));
        out.extend_from_slice(digits.as_bytes());
        out.push(b'Z');
    }

    fn to_the_second(unix_seconds: u64) -> [u8; 19] {
        use std::io::Write;
        let time =
            time::OffsetDateTime::from_unix_timestamp(unix_seconds as i64).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let (date, clock) = (time.date(), time.time());
        let mut text = [0; 19];
        let _ = write!(
            &mut text[..],
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            date.year(),
            u8::from(date.month()),
            date.day(),
            clock.hour(),
            clock.minute(),
            clock.second()
        );
        text
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = Vec::with_capacity(27);
        Timestamp::write(&mut text);
        serializer.serialize_str(std::str::from_utf8(&text).unwrap_or_default())
    }
}

impl Line<'_> {
    /// Appends the line, with its newline, to `out`: in text, byte by byte
    /// as `tracing` would format it, without its general formatting
    /// machinery, which costed several times more.
    fn write(&self, format: LogFormat, out: &mut Vec<u8>) {
        if format == LogFormat::Json {
            let _ = serde_json::to_writer(&mut *out, self);
            out.push(b'\n');
            return;
        }
        Timestamp::write(out);
        for part in ["  INFO ", self.target, ": ", self.message] {
            out.extend_from_slice(part.as_bytes());
        }
        // Request ids, methods, operation names and codes are made of letters, digits and `-_.:`:
        // quoted as they are. Only the path can hold a character `tracing` would escape.
        quoted(out, " request_id=", self.request_id);
        quoted(out, " method=", self.method);
        if self.path.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\') {
            quoted(out, " path=", self.path);
        } else {
            use std::io::Write;
            let _ = write!(out, " path={:?}", self.path);
        }
        number(out, " status=", self.status.into());
        if let Some(GraphqlFields { operation, principal, outcome, code, statements }) = &self.graphql {
            quoted(out, " operation=", operation);
            quoted(out, " principal=", principal);
            quoted(out, " outcome=", outcome);
            quoted(out, " code=", code);
            number(out, " statements=", *statements);
        }
        // Milliseconds to the microsecond, as `tracing` shows the `f64`: `12.5`, `3.0`.
        let micros = u64::try_from(self.duration_ms.as_micros()).unwrap_or(u64::MAX);
        number(out, " duration_ms=", micros / 1000);
        let fraction = micros % 1000;
        let digits =
            [b'.', b'0' + (fraction / 100) as u8, b'0' + (fraction / 10 % 10) as u8, b'0' + (fraction % 10) as u8];
        let used = digits.iter().rposition(|&d| d != b'0').unwrap_or(1).max(1) + 1;
        out.extend_from_slice(&digits[..used]);
        out.push(b'\n');
    }

    /// The line as a `tracing` event.
    fn through_tracing(&self) {
        let (request_id, method, path, status, duration_ms) =
            (self.request_id, self.method, self.path, self.status, millis(self.duration_ms));
        match &self.graphql {
            Some(GraphqlFields { operation, principal, outcome, code, statements }) => tracing::info!(
                target: TARGET,
                request_id,
                method,
                path,
                status,
                operation,
                principal,
                outcome,
                code,
                statements,
                duration_ms,
                "request"
            ),
            None => tracing::info!(target: TARGET, request_id, method, path, status, duration_ms, "request"),
        }
    }
}

/// Appends `name` and `value` in double quotes.
fn quoted(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.push(b'"');
    out.extend_from_slice(value.as_bytes());
    out.push(b'"');
}

/// Appends `name` and `value`.
fn number(out: &mut Vec<u8>, name: &str, value: u64) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// The operation name as the access line shows it: as sent when it is a
/// GraphQL name of reasonable length, otherwise `invalid`.
fn loggable_operation(name: &str) -> &str {
    if metrics::is_short_name(name) { name } else { "invalid" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// The line as `tracing`'s own text formatting writes the same event.
    fn through_tracing(line: &Line) -> String {
        let written = Arc::new(Mutex::new(Vec::new()));
        let writer = written.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || Capture(writer.clone()))
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::with_default(subscriber, || line.through_tracing());
        String::from_utf8(written.lock().unwrap().clone()).unwrap()
    }

    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn line<'a>(path: &'a str, elapsed: Duration, graphql: Option<GraphqlFields<'a>>) -> Line<'a> {
        Line {
            timestamp: Timestamp,
            level: "INFO",
            message: "request",
            target: TARGET,
            request_id: "0123456789abcdef",
            method: "POST",
            path,
            status: 200,
            graphql,
            duration_ms: elapsed,
        }
    }

    /// The line without its timestamp, and the timestamp.
    fn split(text: &str) -> (&str, &str) {
        text.split_once(' ').unwrap()
    }

    #[test]
    fn the_text_line_is_what_tracing_would_write() {
        let fields =
            || GraphqlFields { operation: "Pools", principal: "operator", outcome: "ok", code: "", statements: 3 };
        for micros in [0, 1, 10, 100, 999, 1000, 1500, 12_345, 2_000_000, 86_400_000_123] {
            for path in ["/graphql", "/odd \"path\"\\ä\t"] {
                for graphql in [None, Some(fields())] {
                    let line = line(path, Duration::from_micros(micros), graphql);
                    let mut ours = Vec::new();
                    line.write(LogFormat::Text, &mut ours);
                    let ours = String::from_utf8(ours).unwrap();
                    let theirs = through_tracing(&line);
                    assert_eq!(split(&ours).1, split(&theirs).1, "{micros} µs, path {path:?}");
                }
            }
        }
    }

    #[test]
    fn the_timestamp_is_rfc_3339_utc_to_the_microsecond() {
        let before = time::OffsetDateTime::now_utc();
        let mut text = Vec::new();
        Timestamp::write(&mut text);
        let after = time::OffsetDateTime::now_utc();
        let text = String::from_utf8(text).unwrap();
        assert_eq!(text.len(), "2026-12-07T19:31:16.470920Z".len(), "{text}");
        let parsed = time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339).unwrap();
        assert!(before - time::Duration::microseconds(1) <= parsed && parsed <= after, "{text}");
    }
}
