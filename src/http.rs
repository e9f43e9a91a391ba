//! HTTP: the router, bearer-token extraction, the offline GraphiQL
//! playground, health checks, and the limits of a request: its body size
//! and a body that is slow to arrive, its operation's size (checked before
//! anything runs) and its deadline. GraphQL over HTTP as its spec says:
//! `POST /graphql` (one operation, or a batch when batching is on), `GET
//! /graphql` for queries, answers as `application/graphql-response+json` or
//! `application/json` ([`negotiate`]), and Apollo's automatic persisted
//! queries (`graphql::persisted`). What browsers may do (CORS, JSON-only
//! posts, the playground's security headers) is in [`browser`];
//! subscriptions over WebSocket (a `GET /graphql` with `Upgrade: websocket`)
//! are in [`live`].
//!
//! The body is read here rather than by async-graphql-axum's extractors,
//! which would read a JSON body of any size with no bound on its arrival
//! time, take `multipart/form-data` (a type any page may post across sites),
//! read `GET`'s `operation_name` where the spec says `operationName`, and
//! parse through an untagged enum (the whole body buffered once more, to try
//! one request and then an array): the body is bounded and timed, and its
//! first byte says whether it is a batch.

pub mod browser;
pub mod live;
pub mod negotiate;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use axum::{Json, Router};
use tower::{Service, ServiceBuilder};
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::Instrument;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use crate::client;
use crate::domain::throttle::ClientAddress;
use crate::graphql::documents::Documents;
use crate::graphql::{AppSchema, Settings, context::RequestContext, denials, error, introspection, limits, persisted};
use crate::observability::{Observability, PrincipalKind, RequestSummary, access, operation_name, refusals_during};
use crate::service::auth::SessionCache;
use crate::store::Store;
use negotiate::Answer;

/// Shared state of the router.
#[derive(Clone)]
pub struct AppState {
    pub schema: AppSchema,
    /// The schema for requests whose validation already passed (`graphql::validated_schema`).
    pub validated_schema: AppSchema,
    pub store: Store,
    pub sessions: Arc<SessionCache>,
    pub documents: Arc<Documents>,
    /// Metrics, request ids and the access line.
    pub observability: Observability,
    /// The limits every operation is held to.
    pub settings: Settings,
    /// How long a GraphQL request may run before it is cancelled.
    pub deadline: Duration,
    /// How long a request body may take to arrive in full.
    pub body_timeout: Duration,
    /// A pool of its own for readiness checks, so a busy server still answers them.
    pub background: Store,
    /// How long a readiness check may wait for the database.
    pub ready_timeout: Duration,
    /// CORS, the playground, and whether `x-sql-statements` is answered.
    pub browser: browser::BrowserSettings,
    /// Most operations in a batch (a JSON array); `None`: batching is off.
    pub max_batch: Option<usize>,
    /// Subscriptions over WebSocket; `None`: not served (`--subscriptions false`).
    pub live: Option<Arc<live::Transport>>,
}

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Header asking for the SQL statement count of the request in
/// `extensions.sqlStatements`; answered only when the server exposes it
/// (`--expose-sql-statements`).
pub const STATEMENTS_HEADER: &str = "x-sql-statements";

/// The whole HTTP service: the routes, behind the layers every request
/// passes (outermost first): the request id (a sane incoming `x-request-id`
/// kept, otherwise one made, and echoed), the access line and request
/// metrics, `nosniff`, the client's address, and CORS when origins are
/// allowed. The layers wrap the router as one service rather than each of
/// its routes (`Router::layer`), which would box and clone every layer on
/// every request.
pub fn service(
    state: AppState,
    trusted_proxy_header: Option<HeaderName>,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone + Send + Sync + 'static {
    let cors = browser::cors(&state.browser);
    let unmatched_cors = cors.is_some().then(|| axum::middleware::map_response(browser::drop_unmatched_cors));
    let routes = state.observability.routes(routes(state.clone())).with_state(state);
    ServiceBuilder::new()
        .layer(access::ObserveLayer)
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(client::layer(trusted_proxy_header))
        .option_layer(unmatched_cors)
        .option_layer(cors)
        .service(routes)
}

fn routes(state: AppState) -> Router<AppState> {
    // Without the playground its paths are not found (and so is GET /graphql asking for the page).
    let page = |handler: MethodRouter<AppState>| if state.browser.playground { handler } else { get(not_found) };
    Router::new()
        .route("/", page(get(playground)))
        .route("/graphql", get(graphql_get).post(graphql))
        .route("/assets/graphiql/{file}", page(get(asset)))
        .route("/health/live", get(live))
        .route("/healthz", get(live))
        .route("/health/ready", get(ready))
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

pub(crate) fn transport_error(status: StatusCode, code: &str, message: String) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    summarized((status, Json(body)).into_response(), RequestSummary::rejected(code))
}

/// `response` with what its access line and request metrics report.
fn summarized(mut response: Response, summary: RequestSummary) -> Response {
    response.extensions_mut().insert(summary);
    response
}

/// The message of a request cancelled at its deadline: whatever had not
/// committed was rolled back.
fn deadline_message(deadline: Duration) -> String {
    format!(
        "The request did not finish within {} ms and was cancelled; changes it had not completed were not made. \
         Try again, or ask for less.",
        deadline.as_millis()
    )
}

/// The HTTP status of a GraphQL answer: 400 when it was refused before
/// anything ran; when no field has a value because the database was
/// unavailable, 503, or 504 when it only ran out of time; 200 otherwise
/// (its errors, if any, are in the body).
fn status_of(response: &async_graphql::Response) -> StatusCode {
    let codes = || {
        response.errors.iter().map(|e| match e.extensions.as_ref().and_then(|x| x.get("code")) {
            Some(async_graphql::Value::String(code)) => code.as_str(),
            _ => "",
        })
    };
    if response.errors.is_empty() {
        return StatusCode::OK;
    }
    if codes().all(|c| error::codes::BEFORE_EXECUTION.contains(&c)) {
        return StatusCode::BAD_REQUEST;
    }
    let nothing = match &response.data {
        async_graphql::Value::Null => true,
        async_graphql::Value::Object(fields) => fields.values().all(|v| *v == async_graphql::Value::Null),
        _ => false,
    };
    let unavailable = |c: &str| c == error::codes::SERVICE_UNAVAILABLE || c == error::codes::REQUEST_TIMEOUT;
    match () {
        _ if !nothing || !codes().all(unavailable) => StatusCode::OK,
        _ if codes().all(|c| c == error::codes::REQUEST_TIMEOUT) => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Liveness: the process answers.
async fn live() -> &'static str {
    "ok"
}

/// Readiness: the database answers within the bound and its schema is this
/// build's (every migration applied). 503 with the reason otherwise.
async fn ready(State(state): State<AppState>) -> Response {
    let checked = tokio::time::timeout(state.ready_timeout, state.background.readiness()).await;
    let (status, body) = match checked {
        Ok(Ok(())) => (StatusCode::OK, serde_json::json!({ "status": "ready" })),
        Ok(Err(why)) => {
            (StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({ "status": "unavailable", "reason": why }))
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "status": "unavailable", "reason": "database did not answer in time" }),
        ),
    };
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Reads a request body of at most [`MAX_BODY_BYTES`] that arrives in full
/// within `timeout`; otherwise the answer to send instead (413, 408, 400).
/// The timer is armed only if the body is not there at once.
async fn read_body(body: Body, timeout: Duration) -> Result<Bytes, Response> {
    let too_large = |error: &axum::Error| {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(error) = cause {
            if error.is::<http_body_util::LengthLimitError>() {
                return true;
            }
            cause = error.source();
        }
        false
    };
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(error)) if too_large(&error) => Err(transport_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            error::codes::PAYLOAD_TOO_LARGE,
            format!("The request body is larger than {MAX_BODY_BYTES} bytes."),
        )),
        Ok(Err(error)) => Err(transport_error(
            StatusCode::BAD_REQUEST,
            error::codes::BAD_REQUEST,
            format!("The request body could not be read: {error}"),
        )),
        Err(_) => Err(transport_error(
            StatusCode::REQUEST_TIMEOUT,
            error::codes::REQUEST_BODY_TIMEOUT,
            format!("The request body did not arrive in full within {} ms.", timeout.as_millis()),
        )),
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?.trim();
    (!token.is_empty()).then(|| token.to_string())
}

/// What every operation of one HTTP request shares.
struct Call<'a> {
    state: &'a AppState,
    /// Counts the statements of the whole request.
    store: Store,
    headers: &'a HeaderMap,
    client: Option<ClientAddress>,
    /// The request came as `GET`: only queries run.
    get: bool,
    answer: Answer,
    /// When the request is cancelled (a batch's operations share it).
    deadline: tokio::time::Instant,
}

/// The answer to one operation.
enum Outcome {
    /// It ran (perhaps with errors).
    Executed { response: async_graphql::Response, summary: RequestSummary },
    /// It was refused before it ran, or cancelled at the deadline: one error
    /// object (`{"message", "extensions": {"code", ...}}`) and its status.
    Refused { status: StatusCode, error: serde_json::Value, summary: RequestSummary },
}

impl Outcome {
    fn refused(status: StatusCode, code: &str, message: impl Into<String>, summary: RequestSummary) -> Outcome {
        let error = serde_json::json!({ "message": message.into(), "extensions": { "code": code } });
        Outcome::Refused { status, error, summary }
    }

    /// The answer to a request of this one operation.
    fn into_response(self, call: &Call<'_>) -> Response {
        let (status, mut response, summary) = match self {
            Outcome::Executed { response, summary } => {
                let status = status_of(&response);
                // Refused before it ran: the spec's media type has no `data` then (not even null).
                if status == StatusCode::BAD_REQUEST && call.answer == Answer::GraphqlResponse {
                    let body = serde_json::json!({ "errors": response.errors });
                    (status, (status, Json(body)).into_response(), summary)
                } else {
                    (status, (status, Json(response)).into_response(), summary)
                }
            }
            Outcome::Refused { status, error, summary } => {
                (status, (status, Json(serde_json::json!({ "errors": [error] }))).into_response(), summary)
            }
        };
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, call.answer.content_type());
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match status {
            StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            StatusCode::METHOD_NOT_ALLOWED => {
                headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            _ => {}
        }
        summarized(response, summary)
    }
}

/// `POST /graphql`: a JSON body of one operation `{"query", "operationName",
/// "variables", "extensions"}`, or with batching on, a JSON array of them.
async fn graphql(
    State(state): State<AppState>,
    _json: browser::JsonContentType,
    client: Option<axum::Extension<ClientAddress>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(answer) = negotiate::answer(&headers) else { return not_acceptable() };
    let body = match read_body(body, state.body_timeout).await {
        Ok(body) => body,
        Err(refused) => return with_type(refused, answer),
    };
    let store = state.store.counting();
    let deadline = tokio::time::Instant::now() + state.deadline;
    let call =
        Call { state: &state, store, headers: &headers, client: client.map(|c| c.0), get: false, answer, deadline };
    let batch = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    if batch {
        return with_type(run_batch(&call, &body).await, answer);
    }
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let message = format!("The body must be a JSON GraphQL request {{\"query\": ...}}: {e}");
            return with_type(transport_error(StatusCode::BAD_REQUEST, error::codes::BAD_REQUEST, message), answer);
        }
    };
    run(&call, request).await.into_response(&call)
}

/// The query parameters of `GET /graphql` (the spec's names; `variables` and
/// `extensions` as JSON).
#[derive(serde::Deserialize)]
struct GetParameters {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

/// `GET /graphql`: subscriptions when it asks for a WebSocket ([`live`]);
/// the playground for a browser asking for HTML (when it is served);
/// otherwise a query from the URL's parameters. Mutations are refused with
/// 405 (a GET must not change anything).
async fn graphql_get(
    State(state): State<AppState>,
    client: Option<axum::Extension<ClientAddress>>,
    request: Request,
) -> Response {
    if live::is_upgrade(request.headers()) {
        return live::upgrade(state, request).await;
    }
    let (axum::http::request::Parts { uri, headers, .. }, _) = request.into_parts();
    if negotiate::wants_page(&headers, uri.query().is_some_and(|q| !q.is_empty())) {
        return if state.browser.playground { playground().await } else { not_found().await };
    }
    let Some(answer) = negotiate::answer(&headers) else { return not_acceptable() };
    let bad = |message: String| {
        with_type(transport_error(StatusCode::BAD_REQUEST, error::codes::BAD_REQUEST, message), answer)
    };
    let parameters = match axum::extract::Query::<GetParameters>::try_from_uri(&uri) {
        Ok(axum::extract::Query(p)) => p,
        Err(e) => return bad(format!("The URL's parameters could not be read: {e}")),
    };
    let mut request = async_graphql::Request::new(parameters.query.unwrap_or_default());
    request.operation_name = parameters.operation_name;
    if let Some(variables) = parameters.variables.filter(|v| !v.is_empty()) {
        match serde_json::from_str(&variables) {
            Ok(variables) => request.variables = variables,
            Err(e) => return bad(format!("The `variables` parameter must be a JSON object: {e}")),
        }
    }
    if let Some(extensions) = parameters.extensions.filter(|v| !v.is_empty()) {
        match serde_json::from_str(&extensions) {
            Ok(extensions) => request.extensions = extensions,
            Err(e) => return bad(format!("The `extensions` parameter must be a JSON object: {e}")),
        }
    }
    let store = state.store.counting();
    let deadline = tokio::time::Instant::now() + state.deadline;
    let call =
        Call { state: &state, store, headers: &headers, client: client.map(|c| c.0), get: true, answer, deadline };
    run(&call, request).await.into_response(&call)
}

/// `response` with the negotiated `Content-Type` (its body is JSON in the project's error shape).
fn with_type(mut response: Response, answer: Answer) -> Response {
    response.headers_mut().insert(header::CONTENT_TYPE, answer.content_type());
    response
}

fn not_acceptable() -> Response {
    transport_error(
        StatusCode::NOT_ACCEPTABLE,
        error::codes::NOT_ACCEPTABLE,
        "GraphQL answers are `application/graphql-response+json` or `application/json`; the request's Accept \
         takes neither."
            .into(),
    )
}

/// Runs a batch (a JSON array of operations) one operation after another,
/// each held to the same limits, all of them to one deadline; answers 200
/// with their answers in order, or 504 when the deadline passed.
async fn run_batch(call: &Call<'_>, body: &[u8]) -> Response {
    let Some(max) = call.state.max_batch else {
        return transport_error(
            StatusCode::BAD_REQUEST,
            error::codes::BATCHING_DISABLED,
            "Batching (a JSON array of operations) is off on this server; send one operation per request.".into(),
        );
    };
    let requests: Vec<async_graphql::Request> = match serde_json::from_slice(body) {
        Ok(requests) => requests,
        Err(e) => {
            let message = format!("A batch must be a JSON array of GraphQL requests [{{\"query\": ...}}, ...]: {e}");
            return transport_error(StatusCode::BAD_REQUEST, error::codes::BAD_REQUEST, message);
        }
    };
    if requests.is_empty() || requests.len() > max {
        let message =
            format!("A batch has from 1 to {max} operations; this one has {}. Nothing was run.", requests.len());
        let code = if requests.is_empty() { error::codes::BAD_REQUEST } else { error::codes::BATCH_TOO_LARGE };
        return transport_error(StatusCode::BAD_REQUEST, code, message);
    }
    let mut answers = Vec::with_capacity(requests.len());
    let mut first: Option<RequestSummary> = None;
    let mut principal = PrincipalKind::Unchecked;
    for request in requests {
        let outcome = run(call, request).await;
        let (item, summary) = match outcome {
            Outcome::Executed { response, summary } => (serde_json::to_value(&response).unwrap_or_default(), summary),
            Outcome::Refused { status: StatusCode::GATEWAY_TIMEOUT, error, summary } => {
                // Past the deadline: the whole batch is answered so (what had completed stays done).
                return Outcome::Refused { status: StatusCode::GATEWAY_TIMEOUT, error, summary }.into_response(call);
            }
            Outcome::Refused { error, summary, .. } => (serde_json::json!({ "errors": [error] }), summary),
        };
        if summary.principal != PrincipalKind::Unchecked {
            principal = summary.principal;
        }
        if first.as_ref().is_none_or(|f| f.outcome == access::Outcome::Ok) {
            first = Some(summary);
        }
        answers.push(item);
    }
    let first = first.expect("a batch has an operation");
    let summary =
        RequestSummary { operation: BATCH_OPERATION.into(), principal, statements: call.store.statements(), ..first };
    let mut response = (StatusCode::OK, Json(answers)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    summarized(response, summary)
}

/// The operation name the access line and metrics give a batch.
const BATCH_OPERATION: &str = "batch";

/// Runs one operation: its parse (cached, or by its persisted hash), the
/// limits checked before anything runs, then its execution until the
/// deadline; the audit of refused authorizations of a mutation.
async fn run(call: &Call<'_>, mut request: async_graphql::Request) -> Outcome {
    let state = call.state;
    let store = &call.store;
    let (mut mutation, mut session_neutral, mut validation) = (false, false, None);
    let parsed = match persisted::parse(&state.documents, &mut request) {
        Ok(parsed) => parsed,
        Err(refusal) => {
            let operation = operation_name(request.operation_name.as_deref(), None);
            let summary = RequestSummary::failed(operation, PrincipalKind::Unchecked, refusal.code(), 0);
            // A client that asked for the spec's media type learns "not found" from the status too.
            let status = match (&refusal, call.answer) {
                (persisted::Refusal::NotFound, Answer::GraphqlResponse) => StatusCode::NOT_FOUND,
                (persisted::Refusal::NotFound | persisted::Refusal::NotSupported, Answer::Json) => StatusCode::OK,
                _ => StatusCode::BAD_REQUEST,
            };
            return Outcome::refused(status, refusal.code(), refusal.message(), summary);
        }
    };
    let operation = operation_name(request.operation_name.as_deref(), parsed.as_ref().map(|p| &p.document));
    if let Some(parsed) = parsed {
        if let Err(exceeded) = limits::check(&parsed.document, request.operation_name.as_deref(), &state.settings) {
            let summary = RequestSummary::failed(operation, PrincipalKind::Unchecked, exceeded.code(), 0);
            let error = serde_json::json!({ "message": exceeded.message(), "extensions": {
                "code": exceeded.code(), "limit": exceeded.limit, "max": exceeded.max } });
            return Outcome::Refused { status: StatusCode::BAD_REQUEST, error, summary };
        }
        if !state.settings.introspection && introspection::requested(&parsed.document) {
            let code = error::codes::INTROSPECTION_DISABLED;
            let summary = RequestSummary::failed(operation, PrincipalKind::Unchecked, code, 0);
            return Outcome::refused(StatusCode::BAD_REQUEST, code, introspection::REFUSED, summary);
        }
        if call.get && parsed.mutation {
            let code = error::codes::METHOD_NOT_ALLOWED;
            let summary = RequestSummary::failed(operation, PrincipalKind::Unchecked, code, 0);
            let message = "A mutation must be sent with POST (GET runs only queries); nothing was run.";
            return Outcome::refused(StatusCode::METHOD_NOT_ALLOWED, code, message, summary);
        }
        (mutation, session_neutral, validation) = (parsed.mutation, parsed.session_neutral, parsed.validation);
        request.set_parsed_query(parsed.document);
    }
    let validated = validation.as_ref().is_some_and(|v| v.passed());
    let schema = if validated { &state.validated_schema } else { &state.schema };
    let rcx = Arc::new(RequestContext::new(store.clone(), state.sessions.clone(), bearer(call.headers), mutation));
    let mut request = request.data(rcx.clone());
    if let Some(client) = call.client {
        request = request.data(client);
    }
    // At debug: the access line already names the operation and its statements, and a span
    // entered at every poll would cost more than a small request itself.
    let span = tracing::debug_span!("graphql", operation = %operation, statements = tracing::field::Empty);
    // Past the deadline the execution is dropped: its open transaction rolls back. (The execution's
    // future is large: boxed where it is made, it is not copied again by what wraps it.)
    let execution = Box::pin(schema.execute(request));
    let executed = tokio::time::timeout_at(call.deadline, refusals_during(execution.instrument(span.clone()))).await;
    if mutation && !session_neutral {
        state.sessions.mutation_ran();
    }
    let Ok((mut response, refused)) = executed else {
        tracing::warn!(operation = %operation, deadline_ms = state.deadline.as_millis() as u64, "request cancelled at its deadline");
        let principal = rcx.principal_kind();
        let code = error::codes::REQUEST_TIMEOUT;
        let summary = RequestSummary::failed(operation, principal, code, store.statements());
        return Outcome::refused(StatusCode::GATEWAY_TIMEOUT, code, deadline_message(state.deadline), summary);
    };
    if let Some(v) = validation.filter(|_| !validated && response.errors.is_empty()) {
        v.record_pass();
    }
    if mutation {
        Box::pin(denials::audit(&rcx, &response)).await;
    }
    error::classify(&mut response);
    if !mutation {
        error::null_data_when_a_required_root_failed(&mut response);
    }
    span.record("statements", store.statements());
    if state.browser.expose_statements && call.headers.contains_key(STATEMENTS_HEADER) {
        response.extensions.insert("sqlStatements".into(), async_graphql::Value::from(store.statements()));
    }
    let summary = RequestSummary::new(operation, rcx.principal_kind(), &response, refused, store.statements());
    Outcome::Executed { response, summary }
}

const INDEX: &str = include_str!("../assets/graphiql/index.html");

async fn playground() -> Response {
    browser::secure_page(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response())
}

/// The vendored, unmodified GraphiQL, its explorer plugin, graphql-ws and
/// React files (see assets/graphiql/VERSIONS.md), and the page's own script
/// and style (files, not inline, so the page's CSP needs no `'unsafe-inline'`).
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("playground.js", "text/javascript", include_bytes!("../assets/graphiql/playground.js")),
    ("playground.css", "text/css", include_bytes!("../assets/graphiql/playground.css")),
    ("graphiql.min.js", "text/javascript", include_bytes!("../assets/graphiql/graphiql.min.js")),
    ("graphiql.min.css", "text/css", include_bytes!("../assets/graphiql/graphiql.min.css")),
    (
        "graphiql-plugin-explorer.umd.js",
        "text/javascript",
        include_bytes!("../assets/graphiql/graphiql-plugin-explorer.umd.js"),
    ),
    ("graphiql-plugin-explorer.css", "text/css", include_bytes!("../assets/graphiql/graphiql-plugin-explorer.css")),
    ("graphql-ws.min.js", "text/javascript", include_bytes!("../assets/graphiql/graphql-ws.min.js")),
    ("react.production.min.js", "text/javascript", include_bytes!("../assets/graphiql/react.production.min.js")),
    (
        "react-dom.production.min.js",
        "text/javascript",
        include_bytes!("../assets/graphiql/react-dom.production.min.js"),
    ),
];

async fn asset(Path(file): Path<String>) -> Response {
    let response = match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, mime, bytes)) => {
            ([(header::CONTENT_TYPE, *mime), (header::CACHE_CONTROL, "public, max-age=86400")], *bytes).into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    browser::secure_page(response)
}
