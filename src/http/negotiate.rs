//! Content negotiation of `/graphql` (the GraphQL-over-HTTP spec): which
//! media type an answer is sent as, from the request's `Accept`, and whether
//! a `GET` is a browser asking for the playground page.

use axum::http::{HeaderMap, HeaderValue, header};

/// The media type of the answers to a GraphQL request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `application/graphql-response+json`: the spec's media type, with its
    /// status codes (4xx when nothing ran).
    GraphqlResponse,
    /// `application/json`, the legacy type: what a client that does not ask
    /// for the other (or sends no `Accept`) gets.
    Json,
}

impl Answer {
    /// The `Content-Type` of the answer.
    pub fn content_type(self) -> HeaderValue {
        match self {
            Answer::GraphqlResponse => HeaderValue::from_static(GRAPHQL_RESPONSE),
            Answer::Json => HeaderValue::from_static("application/json"),
        }
    }
}

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// How much a request's `Accept` wants each kind of answer (quality values,
/// in thousandths; 0: not acceptable).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Wants {
    graphql_response: u16,
    json: u16,
    html: u16,
    /// `text/html` is named, not only matched by a wildcard.
    html_named: bool,
}

/// What `Accept` asks for; no header (or an empty one) accepts anything.
fn wants(headers: &HeaderMap) -> Wants {
    let mut values = headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).peekable();
    if values.peek().is_none_or(|v| v.trim().is_empty()) {
        return Wants { graphql_response: 0, json: 1000, html: 1000, html_named: false };
    }
    // The most specific range that matches a type decides its quality (RFC 9110, 12.5.1).
    // Only a client that names the spec's media type gets it; wildcards get the legacy one.
    let mut graphql_response: Option<u16> = None;
    let (mut json, mut html) = ([None; 3], [None; 3]);
    let mut html_named = false;
    for range in values.flat_map(|v| v.split(',')) {
        let mut parts = range.split(';');
        let essence = parts.next().unwrap_or("").trim();
        let quality = parts.find_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")));
        let quality = quality.map_or(1000, parse_quality);
        let set = |slot: &mut [Option<u16>; 3], specificity: usize| {
            let q = &mut slot[specificity];
            *q = Some(q.map_or(quality, |old| old.max(quality)));
        };
        let is = |name: &str| essence.eq_ignore_ascii_case(name);
        if is(GRAPHQL_RESPONSE) {
            graphql_response = Some(graphql_response.map_or(quality, |old| old.max(quality)));
        } else if is("application/json") {
            set(&mut json, 2);
        } else if is("text/html") {
            html_named |= quality > 0;
            set(&mut html, 2);
        } else if is("application/*") {
            set(&mut json, 1);
        } else if is("text/*") {
            set(&mut html, 1);
        } else if essence == "*/*" {
            set(&mut json, 0);
            set(&mut html, 0);
        }
    }
    let decide = |slot: [Option<u16>; 3]| slot.iter().rev().find_map(|q| *q).unwrap_or(0);
    Wants { graphql_response: graphql_response.unwrap_or(0), json: decide(json), html: decide(html), html_named }
}

/// `q=0.8` as 800 (at most three decimals, as RFC 9110 allows); anything
/// unreadable as 0.
fn parse_quality(text: &str) -> u16 {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    let thousandths = (0..3).fold(0, |n, i| n * 10 + fraction.as_bytes().get(i).map_or(0, |d| u16::from(d - b'0')));
    match whole {
        "0" => thousandths,
        "1" if thousandths == 0 => 1000,
        _ => 0,
    }
}

/// The media type to answer a GraphQL request with: the spec's when the
/// client asks for it at least as much as for `application/json`, the
/// legacy one otherwise; `None` when the client accepts neither (406).
pub fn answer(headers: &HeaderMap) -> Option<Answer> {
    let wants = wants(headers);
    match (wants.graphql_response, wants.json) {
        (0, 0) => None,
        (g, j) if g >= j => Some(Answer::GraphqlResponse),
        _ => Some(Answer::Json),
    }
}

/// Whether a `GET /graphql` is a browser asking for the playground: HTML is
/// acceptable at least as much as JSON, and either `text/html` is named (a
/// browser's `Accept`) or the request carries no GraphQL parameters at all
/// (nothing to run: e.g. `curl /graphql`).
pub fn wants_page(headers: &HeaderMap, has_parameters: bool) -> bool {
    let wants = wants(headers);
    wants.html > 0 && wants.html >= wants.graphql_response.max(wants.json) && (wants.html_named || !has_parameters)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_spec_media_type_only_when_asked_for() {
        assert_eq!(answer(&HeaderMap::new()), Some(Answer::Json));
        assert_eq!(answer(&accept("*/*")), Some(Answer::Json));
        assert_eq!(answer(&accept("application/json")), Some(Answer::Json));
        assert_eq!(answer(&accept("application/graphql-response+json")), Some(Answer::GraphqlResponse));
        // What Apollo Client and graphql-request send.
        let both = "application/graphql-response+json, application/json;q=0.9";
        assert_eq!(answer(&accept(both)), Some(Answer::GraphqlResponse));
        assert_eq!(answer(&accept("application/json, application/graphql-response+json;q=0.5")), Some(Answer::Json));
        assert_eq!(answer(&accept("application/*")), Some(Answer::Json));
        assert_eq!(answer(&accept("application/json, application/*;q=0.5")), Some(Answer::Json));
        for refused in ["text/html", "image/png", "application/xml", "application/json;q=0", "*/*;q=0"] {
            assert_eq!(answer(&accept(refused)), None, "{refused}");
        }
        // A browser's Accept includes */*: it may have JSON.
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert_eq!(answer(&accept(browser)), Some(Answer::Json));
    }

    #[test]
    fn the_page_goes_to_browsers_only() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(wants_page(&accept(browser), true));
        assert!(wants_page(&accept(browser), false));
        assert!(wants_page(&HeaderMap::new(), false));
        assert!(wants_page(&accept("*/*"), false));
        assert!(!wants_page(&accept("*/*"), true));
        assert!(!wants_page(&HeaderMap::new(), true));
        assert!(!wants_page(&accept("application/json"), false));
        assert!(!wants_page(&accept("application/graphql-response+json"), false));
        assert!(!wants_page(&accept("application/json, text/html;q=0.5"), false));
    }

    #[test]
    fn qualities_read_as_thousandths() {
        assert_eq!(parse_quality("1"), 1000);
        assert_eq!(parse_quality("0.8"), 800);
        assert_eq!(parse_quality("0.125"), 125);
        assert_eq!(parse_quality("0"), 0);
        assert_eq!(parse_quality("x"), 0);
        assert_eq!(parse_quality("2"), 0);
    }
}
