//! Parsed GraphQL documents, kept per query text: an admin screen sends the
//! same few queries over and over, and parsing is a tenth of a small
//! query's cost. The cached parse is handed to async-graphql, which still
//! validates it (and checks its depth) on every request. Also tells whether
//! the operation a request runs is a mutation, which decides how its session
//! is checked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};

/// Most documents kept; when full, the cache starts over.
const ENTRIES: usize = 512;
/// Longer query texts are parsed every time (they are not an admin screen's).
const MAX_CACHED_QUERY_BYTES: usize = 16 * 1024;

/// A parse that async-graphql can use, and what the server needs to know of it.
pub struct Parsed {
    pub document: ExecutableDocument,
    /// The operation that runs is a mutation (or, when the request does not
    /// say which of several it runs, any of them is).
    pub mutation: bool,
}

#[derive(Default)]
pub struct Documents {
    entries: Mutex<HashMap<String, Arc<ExecutableDocument>>>,
}

impl Documents {
    /// The parse of `query`, from the cache when it is there; `None` when the
    /// text does not parse (async-graphql then reports the syntax error).
    pub fn parse(&self, query: &str, operation_name: Option<&str>) -> Option<Parsed> {
        let cached = self.entries.lock().unwrap_or_else(|e| e.into_inner()).get(query).cloned();
        let document = match cached {
            Some(document) => document,
            None => {
                let document = Arc::new(async_graphql::parser::parse_query(query).ok()?);
                if query.len() <= MAX_CACHED_QUERY_BYTES {
                    let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
                    if entries.len() >= ENTRIES {
                        entries.clear();
                    }
                    entries.insert(query.to_string(), document.clone());
                }
                document
            }
        };
        let mutation = is_mutation(&document, operation_name);
        Some(Parsed { document: (*document).clone(), mutation })
    }
}

fn is_mutation(document: &ExecutableDocument, operation_name: Option<&str>) -> bool {
    match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), _) => op.node.ty == OperationType::Mutation,
        (DocumentOperations::Multiple(ops), Some(name)) => {
            ops.get(name).is_some_and(|op| op.node.ty == OperationType::Mutation)
        }
        (DocumentOperations::Multiple(ops), None) => ops.values().any(|op| op.node.ty == OperationType::Mutation),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_mutations_from_queries() {
        let docs = Documents::default();
        assert!(!docs.parse("{ viewer { username } }", None).unwrap().mutation);
        assert!(docs.parse("mutation { signOut }", None).unwrap().mutation);
        let two = "query A { viewer { username } } mutation B { signOut }";
        assert!(!docs.parse(two, Some("A")).unwrap().mutation);
        assert!(docs.parse(two, Some("B")).unwrap().mutation);
        assert!(docs.parse(two, None).unwrap().mutation);
        assert!(docs.parse("{ viewer {", None).is_none());
        // The second parse of a text comes from the cache and is the same document.
        assert_eq!(docs.entries.lock().unwrap().len(), 3);
        assert!(docs.parse("mutation { signOut }", None).unwrap().mutation);
        assert_eq!(docs.entries.lock().unwrap().len(), 3);
    }
}
