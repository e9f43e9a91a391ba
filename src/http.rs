//! HTTP: the router, bearer-token extraction, the offline GraphiQL
//! playground, and transport limits (body size, a body that stops
//! arriving). GraphQL over `POST /graphql`.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tracing::Instrument;

use std::sync::Arc;

use crate::graphql::documents::Documents;
use crate::graphql::{AppSchema, context::RequestContext, denials, error};
use crate::service::auth::SessionCache;
use crate::store::Store;

/// Shared state of the router.
#[derive(Clone)]
pub struct AppState {
    pub schema: AppSchema,
    /// The schema for requests whose validation already passed (`graphql::validated_schema`).
    pub validated_schema: AppSchema,
    pub store: Store,
    pub sessions: Arc<SessionCache>,
    pub documents: Arc<Documents>,
}

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Header asking for the SQL statement count of the request in `extensions.sqlStatements`.
pub const STATEMENTS_HEADER: &str = "x-sql-statements";

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(playground))
        .route("/graphql", get(playground).post(graphql))
        .route("/assets/graphiql/{file}", get(asset))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn transport_error(status: StatusCode, code: &str, message: String) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, Json(body)).into_response()
}

/// Whether reading the body failed because it stopped arriving (the body
/// timeout of `server`, tower-http's `RequestBodyTimeout`).
fn body_timed_out(rejection: &axum::extract::rejection::BytesRejection) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(error) = cause {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = error.source();
    }
    false
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?.trim();
    (!token.is_empty()).then(|| token.to_string())
}

async fn graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return transport_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                error::codes::PAYLOAD_TOO_LARGE,
                format!("The request body is larger than {MAX_BODY_BYTES} bytes."),
            );
        }
        Err(rejection) if body_timed_out(&rejection) => {
            return transport_error(
                StatusCode::REQUEST_TIMEOUT,
                error::codes::REQUEST_BODY_TIMEOUT,
                "The request body stopped arriving.".into(),
            );
        }
        Err(rejection) => {
            return transport_error(rejection.status(), error::codes::BAD_REQUEST, rejection.body_text());
        }
    };
    let mut request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return transport_error(
                StatusCode::BAD_REQUEST,
                error::codes::BAD_REQUEST,
                format!("The body must be a JSON GraphQL request {{\"query\": ...}}: {e}"),
            );
        }
    };
    let store = state.store.counting();
    let operation = request.operation_name.clone().unwrap_or_else(|| "anonymous".into());
    let (mut mutation, mut session_neutral, mut validation) = (false, false, None);
    if let Some(parsed) = state.documents.parse(&request.query, request.operation_name.as_deref(), &request.variables) {
        (mutation, session_neutral, validation) = (parsed.mutation, parsed.session_neutral, parsed.validation);
        request.set_parsed_query(parsed.document);
    }
    let validated = validation.as_ref().is_some_and(|v| v.passed());
    let schema = if validated { &state.validated_schema } else { &state.schema };
    let rcx = Arc::new(RequestContext::new(store.clone(), state.sessions.clone(), bearer(&headers), mutation));
    let request = request.data(rcx.clone());
    let span = tracing::info_span!("graphql", operation = %operation, statements = tracing::field::Empty);
    let mut response = schema.execute(request).instrument(span.clone()).await;
    if let Some(v) = validation.filter(|_| !validated && response.errors.is_empty()) {
        v.record_pass();
    }
    if mutation {
        if !session_neutral {
            state.sessions.mutation_ran();
        }
        denials::audit(&rcx, &response).await;
    }
    error::classify(&mut response);
    span.record("statements", store.statements());
    if headers.contains_key(STATEMENTS_HEADER) {
        response.extensions.insert("sqlStatements".into(), async_graphql::Value::from(store.statements()));
    }
    let mut http = Json(response).into_response();
    http.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    http
}

const INDEX: &str = include_str!("../assets/graphiql/index.html");

async fn playground() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response()
}

/// The vendored, unmodified GraphiQL and React files (see assets/graphiql/VERSIONS.md).
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("graphiql.min.js", "text/javascript", include_bytes!("../assets/graphiql/graphiql.min.js")),
    ("graphiql.min.css", "text/css", include_bytes!("../assets/graphiql/graphiql.min.css")),
    ("react.production.min.js", "text/javascript", include_bytes!("../assets/graphiql/react.production.min.js")),
    (
        "react-dom.production.min.js",
        "text/javascript",
        include_bytes!("../assets/graphiql/react-dom.production.min.js"),
    ),
];

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, mime, bytes)) => {
            ([(header::CONTENT_TYPE, *mime), (header::CACHE_CONTROL, "public, max-age=86400")], *bytes).into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
