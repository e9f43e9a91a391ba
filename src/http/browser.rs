//! What a browser may do with the server: which other origins may call the
//! API (CORS, closed unless configured), that `POST /graphql` takes only a
//! JSON body (so no HTML form or other "simple" cross-site request can run an
//! operation), and the security headers of the playground page and its assets
//! (a Content-Security-Policy that allows only the server's own files).

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::graphql::error;
use crate::observability::access::REQUEST_ID_HEADER;

/// The browser-facing settings of one server.
#[derive(Debug, Clone, Default)]
pub struct BrowserSettings {
    /// Origins (`scheme://host[:port]`) whose pages may call the API with
    /// credentials; none: no CORS headers at all.
    pub cors_origins: Vec<HeaderValue>,
    /// How long a browser may cache a preflight's answer.
    pub cors_max_age: Duration,
    /// Whether `/`, `GET /graphql` and `/assets/graphiql/*` serve the playground.
    pub playground: bool,
    /// Whether a request may ask for its SQL statement count (`x-sql-statements`).
    pub expose_statements: bool,
}

/// The CORS layer for `settings`: `None` (no CORS headers, so browsers keep
/// other origins' pages out) when no origin is allowed. An allowed origin
/// gets credentials, `Authorization`, `Content-Type` and `x-request-id` (and
/// `x-sql-statements` when the count is exposed), `x-request-id` exposed,
/// and its preflight cached for `cors_max_age`.
pub fn cors(settings: &BrowserSettings) -> Option<CorsLayer> {
    if settings.cors_origins.is_empty() {
        return None;
    }
    let mut allowed = vec![header::AUTHORIZATION, header::CONTENT_TYPE, REQUEST_ID_HEADER];
    if settings.expose_statements {
        allowed.push(HeaderName::from_static(super::STATEMENTS_HEADER));
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(settings.cors_origins.iter().cloned()))
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers(allowed)
            .expose_headers([REQUEST_ID_HEADER])
            .max_age(settings.cors_max_age),
    )
}

/// Removes the CORS headers of an answer to an origin that is not allowed.
/// tower-http's layer leaves out only `Access-Control-Allow-Origin` then
/// (which alone makes the browser refuse); with this, such an origin learns
/// nothing about what allowed ones may do.
pub async fn drop_unmatched_cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        let cors: Vec<HeaderName> =
            headers.keys().filter(|name| name.as_str().starts_with("access-control-")).cloned().collect();
        for name in cors {
            headers.remove(name);
        }
    }
    response
}

/// Parses one allowed CORS origin as a browser sends it in `Origin`:
/// `http` or `https`, a host, an optional port, and nothing else (no path,
/// no trailing slash, no wildcard: credentials are allowed, so every origin
/// is named).
pub fn parse_origin(text: &str) -> Result<HeaderValue, String> {
    let text = text.trim();
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or_else(|| format!("`{text}`: an origin starts with http:// or https://"))?;
    let host_ok =
        !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !host_ok {
        return Err(format!("`{text}`: an origin is scheme://host[:port], with no path, wildcard or trailing slash"));
    }
    HeaderValue::from_str(text).map_err(|e| format!("`{text}`: {e}"))
}

/// Whether `value` is a JSON media type: `application/json` or a structured
/// `application/<name>+json` (RFC 6839), with any parameters, a `charset`
/// only as `utf-8` (JSON is UTF-8, RFC 8259). The three "simple" types a page
/// of any origin may post without a preflight (`text/plain`,
/// `multipart/form-data`, `application/x-www-form-urlencoded`) are not.
pub fn is_json(value: &HeaderValue) -> bool {
    let Ok(value) = value.to_str() else { return false };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let json = match essence.strip_prefix("application/") {
        Some("json") => true,
        Some(subtype) => subtype.strip_suffix("+json").is_some_and(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        }),
        None => false,
    };
    json && parts.all(|parameter| match parameter.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        _ => true,
    })
}

/// Extractor that lets a request through only with a JSON `Content-Type`;
/// any other (or none) is answered 415 `UNSUPPORTED_MEDIA_TYPE` before the
/// body is read or anything runs.
pub struct JsonContentType;

impl<S: Send + Sync> FromRequestParts<S> for JsonContentType {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        match parts.headers.get(header::CONTENT_TYPE) {
            Some(value) if is_json(value) => Ok(JsonContentType),
            _ => Err(super::transport_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                error::codes::UNSUPPORTED_MEDIA_TYPE,
                "A GraphQL request is a POST with `Content-Type: application/json` and a JSON body \
                 {\"query\": ...}."
                    .into(),
            )),
        }
    }
}

/// The Content-Security-Policy of the playground page and its assets: only
/// the server's own scripts, styles and API (`'self'`); no inline script or
/// style, no `eval`; fonts and icons only as the `data:` URIs embedded in
/// GraphiQL's stylesheet; no plugins, no base or form targets; no framing.
/// `connect-src 'self'` also lets the page open WebSockets (`ws:`, and
/// `wss:` behind TLS) to its own host and port, for subscriptions, and to no
/// other (CSP Level 3; clients/test/playground.test.js checks it in Chromium).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; font-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// Adds the playground's security headers to `response`: the CSP above, no
/// framing (`frame-ancestors` and the older `X-Frame-Options`), no MIME
/// sniffing, and no `Referer` sent from the page.
pub fn secure_page(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(value: &str) -> bool {
        is_json(&HeaderValue::from_str(value).unwrap())
    }

    #[test]
    fn only_json_media_types_are_json() {
        for yes in [
            "application/json",
            "Application/JSON; charset=UTF-8",
            "application/json;charset=\"utf-8\"",
            "application/graphql+json",
            "application/vnd.api+json",
        ] {
            assert!(json(yes), "{yes}");
        }
        for no in [
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded",
            "application/json; charset=latin1",
            "application/+json",
            "text/json",
            "application/jsonp",
            "",
        ] {
            assert!(!json(no), "{no}");
        }
    }

    #[test]
    fn an_origin_is_scheme_host_and_port_only() {
        assert!(parse_origin("http://localhost:5173").is_ok());
        assert!(parse_origin("https://app.example.com").is_ok());
        for bad in
            ["*", "localhost:5173", "https://app.example.com/", "https://a.example/x", "ftp://a.example", "https://"]
        {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
