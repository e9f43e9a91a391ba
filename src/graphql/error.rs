//! The closed set of top-level errors. Every error a resolver returns goes
//! through [`From<ServiceError>`], which sets a stable `extensions.code`;
//! `ServiceError` has no `Display`, so async-graphql's blanket conversion can
//! never send an internal message to a client.

use async_graphql::ErrorExtensions;

use crate::service::ServiceError;
use crate::store::Failure;

/// Stable codes of top-level errors.
pub mod codes {
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const INTERNAL: &str = "INTERNAL_SERVER_ERROR";
    pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
    pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
    pub const QUERY_TOO_DEEP: &str = "QUERY_TOO_DEEP";
    pub const QUERY_TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";
    pub const REQUEST_TIMEOUT: &str = "REQUEST_TIMEOUT";
    /// `POST /graphql` without a JSON `Content-Type` (HTTP 415); nothing ran.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UNSUPPORTED_MEDIA_TYPE";
    /// `__schema` or `__type` asked of a server with introspection off; nothing ran.
    pub const INTROSPECTION_DISABLED: &str = "INTROSPECTION_DISABLED";
    /// A request with more than one `signIn` field: refused before anything ran.
    pub const TOO_MANY_SIGN_INS: &str = "TOO_MANY_SIGN_INS";

    /// Codes of errors found before anything executed: the request changed
    /// and read nothing.
    pub const BEFORE_EXECUTION: &[&str] = &[PARSE_FAILED, VALIDATION_FAILED, QUERY_TOO_DEEP, QUERY_TOO_COMPLEX];
    /// The request body did not arrive in full within the body timeout (HTTP 408).
    pub const REQUEST_BODY_TIMEOUT: &str = "REQUEST_BODY_TIMEOUT";
    /// The client's `Accept` takes neither `application/graphql-response+json`
    /// nor `application/json` (HTTP 406); nothing ran.
    pub const NOT_ACCEPTABLE: &str = "NOT_ACCEPTABLE";
    /// A mutation sent with `GET` (HTTP 405, `Allow: POST`); nothing ran.
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    /// Only the hash of a persisted query was sent, and the server does not
    /// know it: send the query with its hash (Apollo's clients do this).
    pub const PERSISTED_QUERY_NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
    /// The server keeps no persisted queries (`--persisted-queries 0`).
    pub const PERSISTED_QUERY_NOT_SUPPORTED: &str = "PERSISTED_QUERY_NOT_SUPPORTED";
    /// The query sent does not have the SHA-256 sent with it; nothing ran.
    pub const PERSISTED_QUERY_HASH_MISMATCH: &str = "PERSISTED_QUERY_HASH_MISMATCH";
    /// A JSON array of operations sent to a server with batching off.
    pub const BATCHING_DISABLED: &str = "BATCHING_DISABLED";
    /// A batch of more operations than the server allows.
    pub const BATCH_TOO_LARGE: &str = "BATCH_TOO_LARGE";
    /// A subscription past the most one WebSocket connection runs at once.
    pub const TOO_MANY_SUBSCRIPTIONS: &str = "TOO_MANY_SUBSCRIPTIONS";
    /// A subscriber fell further behind its events than the server keeps; its
    /// subscription ended (subscribe again, and read what was missed).
    pub const SUBSCRIPTION_LAGGED: &str = "SUBSCRIPTION_LAGGED";
    /// Events may have been missed (the server lost its change feed for a
    /// moment); the subscription ended (subscribe again, and read what was missed).
    pub const SUBSCRIPTION_INTERRUPTED: &str = "SUBSCRIPTION_INTERRUPTED";
}

impl From<ServiceError> for async_graphql::Error {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Unauthenticated(why) => async_graphql::Error::new(format!("Not signed in: {why}."))
                .extend_with(|_, e| e.set("code", codes::UNAUTHENTICATED)),
            ServiceError::Forbidden(rule) => async_graphql::Error::new(format!("Not allowed: {}.", rule.says))
                .extend_with(|_, e| {
                    e.set("code", codes::FORBIDDEN);
                    e.set("rule", rule.name);
                }),
            ServiceError::NotFound(what) => async_graphql::Error::new(crate::service::not_found_message(what))
                .extend_with(|_, e| e.set("code", codes::NOT_FOUND)),
            ServiceError::Invalid(input) => async_graphql::Error::new(input.message).extend_with(|_, e| {
                e.set("code", codes::BAD_USER_INPUT);
                e.set("field", input.field);
            }),
            ServiceError::Unavailable(Failure::TimedOut) => async_graphql::Error::new(
                "The database did not finish in time; nothing was changed by this field. Try again, or ask for less.",
            )
            .extend_with(|_, e| e.set("code", codes::REQUEST_TIMEOUT)),
            ServiceError::Unavailable(_) => async_graphql::Error::new(
                "The database is unavailable or too busy right now; nothing was changed by this field. Try again shortly.",
            )
            .extend_with(|_, e| e.set("code", codes::SERVICE_UNAVAILABLE)),
            ServiceError::Internal => {
                async_graphql::Error::new("Internal server error; the details are in the server log.")
                    .extend_with(|_, e| e.set("code", codes::INTERNAL))
            }
        }
    }
}

/// Gives every error async-graphql produced itself (parsing, validation,
/// limits) a stable code, so clients can rely on `extensions.code` always.
pub fn classify(resp: &mut async_graphql::Response) {
    for err in &mut resp.errors {
        let has_code = err.extensions.as_ref().is_some_and(|e| e.get("code").is_some());
        if has_code {
            continue;
        }
        let code = if err.message.contains("nested too deep") {
            codes::QUERY_TOO_DEEP
        } else if err.message.contains("too complex") {
            codes::QUERY_TOO_COMPLEX
        } else if err.message.starts_with(" -->") || err.message.contains("expected") && err.locations.is_empty() {
            codes::PARSE_FAILED
        } else {
            codes::VALIDATION_FAILED
        };
        err.extensions.get_or_insert_with(Default::default).set("code", code);
    }
}

/// As the GraphQL spec says, a non-null root field of a query that failed
/// makes the whole `data` null. async-graphql instead leaves the failed
/// field's key out of `data`. Nullable root fields answer their failure as
/// `null` (see `query::or_null`), so a root key named by an error's path and
/// missing from `data` is the failure of a non-null root field: no answer to
/// a query leaves out a root field it asked for.
///
/// Not for mutations: their root fields are non-null, and nulling `data`
/// would hide the results of the fields that did commit (and, when the
/// failure was the database's, answer 503 to a request that changed data).
pub fn null_data_when_a_required_root_failed(resp: &mut async_graphql::Response) {
    let async_graphql::Value::Object(data) = &resp.data else { return };
    let failed = resp.errors.iter().any(|e| match e.path.as_slice() {
        [async_graphql::PathSegment::Field(key)] => !data.contains_key(key.as_str()),
        _ => false,
    });
    if failed {
        resp.data = async_graphql::Value::Null;
    }
}
