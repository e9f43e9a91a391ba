//! Apollo's automatic persisted queries (APQ): a client sends
//! `extensions.persistedQuery {version: 1, sha256Hash}` without the query
//! text; a server that does not know the hash answers
//! `PersistedQueryNotFound`, and the client sends text and hash together,
//! which registers the text under its hash. The parses are kept by
//! [`Documents`] (the same entries as by text), in a bounded number.

use crate::domain::sha256_hex;
use async_graphql::{Request, Value};

use super::documents::{Documents, Parsed};
use super::error::codes;

/// Why a request with `extensions.persistedQuery` is not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Only the hash was sent and no query is kept under it: the client sends the text.
    NotFound,
    /// This server keeps no persisted queries (`--persisted-queries 0`).
    NotSupported,
    /// The text sent does not have the hash sent.
    Mismatch,
    /// The extension is not `{version: 1, sha256Hash: "<64 hex digits>"}`.
    Invalid,
}

impl Refusal {
    /// The stable `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotFound => codes::PERSISTED_QUERY_NOT_FOUND,
            Refusal::NotSupported => codes::PERSISTED_QUERY_NOT_SUPPORTED,
            Refusal::Mismatch => codes::PERSISTED_QUERY_HASH_MISMATCH,
            Refusal::Invalid => codes::BAD_REQUEST,
        }
    }

    /// The message: for the first two, exactly what Apollo's clients look for.
    pub fn message(&self) -> &'static str {
        match self {
            Refusal::NotFound => "PersistedQueryNotFound",
            Refusal::NotSupported => "PersistedQueryNotSupported",
            Refusal::Mismatch => {
                "The query's SHA-256 is not the extensions.persistedQuery.sha256Hash sent with it; nothing was run \
                 and nothing was registered."
            }
            Refusal::Invalid => {
                "extensions.persistedQuery must be {\"version\": 1, \"sha256Hash\": \"<the query's SHA-256 as 64 \
                 lowercase hex digits>\"}; nothing was run."
            }
        }
    }
}

/// The parse of the query `request` runs, through the persisted queries
/// when it names one (the extension is taken out of the request); `Ok(None)`
/// when the text does not parse (async-graphql then reports the syntax error).
pub fn parse(documents: &Documents, request: &mut Request) -> Result<Option<Parsed>, Refusal> {
    let Some(extension) = request.extensions.0.remove("persistedQuery") else {
        return Ok(documents.parse(&request.query, request.operation_name.as_deref(), &request.variables));
    };
    let hash = hash_of(&extension).ok_or(Refusal::Invalid)?;
    if !documents.persists() {
        return Err(Refusal::NotSupported);
    }
    let (operation_name, variables) = (request.operation_name.as_deref(), &request.variables);
    if request.query.is_empty() {
        return documents.persisted(&hash, operation_name, variables).map(Some).ok_or(Refusal::NotFound);
    }
    if sha256_hex(&request.query) != hash {
        return Err(Refusal::Mismatch);
    }
    Ok(documents.persist(&hash, &request.query, operation_name, variables))
}

/// The hash of a version 1 extension, in lowercase.
fn hash_of(extension: &Value) -> Option<String> {
    let Value::Object(fields) = extension else { return None };
    let version = fields.get("version").and_then(|v| if let Value::Number(n) = v { n.as_i64() } else { None });
    let Some(Value::String(hash)) = fields.get("sha256Hash") else { return None };
    let hex = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    (version == Some(1) && hex).then(|| hash.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str, hash: Option<&str>) -> Request {
        let mut request = Request::new(query);
        if let Some(hash) = hash {
            let extension = serde_json::json!({ "version": 1, "sha256Hash": hash });
            request.extensions.0.insert("persistedQuery".into(), Value::from_json(extension).unwrap());
        }
        request
    }

    #[test]
    fn a_hash_is_found_only_after_its_text_was_sent_with_it() {
        let docs = Documents::default();
        let query = "{ viewer { username } }";
        let hash = sha256_hex(query);
        assert_eq!(parse(&docs, &mut request("", Some(&hash))).err(), Some(Refusal::NotFound));
        // Known by text is not registered by hash.
        assert!(parse(&docs, &mut request(query, None)).unwrap().is_some());
        assert_eq!(parse(&docs, &mut request("", Some(&hash))).err(), Some(Refusal::NotFound));
        assert!(parse(&docs, &mut request(query, Some(&hash))).unwrap().is_some());
        let found = parse(&docs, &mut request("", Some(&hash.to_ascii_uppercase()))).unwrap().unwrap();
        assert!(!found.mutation);
    }

    #[test]
    fn a_text_with_another_hash_is_refused_and_not_registered() {
        let docs = Documents::default();
        let other = sha256_hex("{ sites { id } }");
        let mut sent = request("{ viewer { username } }", Some(&other));
        assert_eq!(parse(&docs, &mut sent).err(), Some(Refusal::Mismatch));
        assert_eq!(parse(&docs, &mut request("", Some(&other))).err(), Some(Refusal::NotFound));
        for bad in [serde_json::json!("x"), serde_json::json!({ "version": 2, "sha256Hash": other })] {
            let mut sent = Request::new("");
            sent.extensions.0.insert("persistedQuery".into(), Value::from_json(bad).unwrap());
            assert_eq!(parse(&docs, &mut sent).err(), Some(Refusal::Invalid));
        }
        assert_eq!(parse(&docs, &mut request("", Some("abc"))).err(), Some(Refusal::Invalid));
    }

    #[test]
    fn the_cache_keeps_a_bounded_number() {
        let docs = Documents::new(4);
        let texts: Vec<String> = (0..10).map(|i| format!("query Q{i} {{ viewer {{ username }} }}")).collect();
        for text in &texts {
            parse(&docs, &mut request(text, Some(&sha256_hex(text)))).unwrap().unwrap();
        }
        let kept = texts.iter().filter(|t| parse(&docs, &mut request("", Some(&sha256_hex(t)))).is_ok()).count();
        assert!((1..=4).contains(&kept), "{kept}");
        assert!(parse(&docs, &mut request("", Some(&sha256_hex(&texts[9])))).is_ok());
        let none = Documents::new(0);
        let text = &texts[0];
        assert_eq!(parse(&none, &mut request(text, Some(&sha256_hex(text)))).err(), Some(Refusal::NotSupported));
    }

    #[test]
    fn the_hash_is_apollos() {
        // sha256("{ value }") as in async-graphql's own test of the protocol.
        assert_eq!(sha256_hex("{ value }"), "854174ebed716fe24fd6659c30290aecd9bc1d17dc4f47939a1848a1b8ed3c6b");
    }
}
