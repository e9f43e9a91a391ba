//! Parsed GraphQL documents, kept per query text: an admin screen sends the
//! same few queries over and over, and parsing is a real part of a small
//! query's cost. Also tells whether the operation a request runs is a
//! mutation, which decides how its session is checked. The same entries are
//! kept by the SHA-256 of their text for Apollo's automatic persisted queries
//! (a bounded number, registered by a request that sends text and hash), so
//! a request that sends only the hash finds its parse, and what its
//! validation learned, in one place.
//!
//! Validation is a large part of a request's work on the server, and its result
//! for a document depends on little besides the document: which operation
//! runs, and whether each variable's value fits its type. For variables of
//! the built-in scalars that fit depends only on the kind of JSON value
//! (string, boolean, integer, ...), so a [`Shape`] of the request (the
//! operation and the kinds of its variables' values) decides the result.
//! Once a request of some shape has run on the strictly validating schema
//! without any error, later requests of that document and shape may run on
//! the schema that skips the rules already passed (async-graphql's
//! `ValidationMode::Fast`, which still checks depth and complexity). Any
//! other shape (a value of another kind, an enum or input-object variable)
//! is validated strictly, so bad input gets the same answer every time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::Positioned;
use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
};
use async_graphql::{Value, Variables};

/// Documents kept per generation: when the newer one is full it becomes the
/// older one, and what is in the older one and not asked for again by then
/// is dropped. So at most twice this many are kept, and one in use stays.
const ENTRIES: usize = 512;
/// Longer query texts are parsed every time (they are not an admin screen's).
const MAX_CACHED_QUERY_BYTES: usize = 16 * 1024;
/// Most shapes remembered as validated per document; later ones are validated every time.
const SHAPES: usize = 16;
/// Mutations that write no session, login, person, owner account or
/// agreement, so they leave every signed-in principal as it was: a request
/// that runs only these keeps this instance's cached sessions trusted
/// (`SessionCache::mutation_ran`). A mutation missing here distrusts them all,
/// which is always safe.
const SESSION_NEUTRAL: &[&str] = &[
    "changeLoginProfile",
    "createPerson",
    "createLogin",
    "createProfile",
    "updateProfile",
    "deleteProfile",
    "setPoolTotal",
    "assignResponsibility",
    "removeResponsibility",
];

/// Whether a mutation of this name may end or change a session (it is not
/// session-neutral): live connections of its site check theirs again.
pub fn may_change_sessions(mutation: &str) -> bool {
    !SESSION_NEUTRAL.contains(&mutation)
}

/// A parse that async-graphql can use, and what the server needs to know of it.
pub struct Parsed {
    pub document: ExecutableDocument,
    /// The operation that runs is a mutation (or, when the request does not
    /// say which of several it runs, any of them is).
    pub mutation: bool,
    /// The operation that runs is known, and its every top-level field is a
    /// mutation of `SESSION_NEUTRAL` (no fragment).
    pub session_neutral: bool,
    /// Whether this request's shape already passed strict validation; `None`
    /// when the request is always validated strictly.
    pub validation: Option<Validation>,
}

/// The operation a request runs and, per variable it declares, the kind of
/// value given: what strict validation depends on besides the document.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    operation: Option<String>,
    kinds: Vec<Kind>,
}

/// Kinds of variable values among which a built-in scalar's validity cannot change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Absent,
    Null,
    String,
    Boolean,
    Int32,
    Int64,
    OtherNumber,
    Other,
}

struct Entry {
    document: Arc<ExecutableDocument>,
    /// Shapes that ran on the strict schema without any error.
    passed: Mutex<Vec<Shape>>,
}

/// A request's shape, and whether it already passed strict validation.
pub struct Validation {
    entry: Arc<Entry>,
    shape: Shape,
    passed: bool,
}

impl Validation {
    /// A request of this shape ran on the strict schema without any error.
    pub fn passed(&self) -> bool {
        self.passed
    }

    /// Records that this request ran on the strict schema without any error.
    pub fn record_pass(&self) {
        let mut passed = self.entry.passed.lock().unwrap_or_else(|e| e.into_inner());
        if passed.len() < SHAPES && !passed.contains(&self.shape) {
            passed.push(self.shape.clone());
        }
    }
}

pub struct Documents {
    /// By query text.
    entries: Mutex<Generations>,
    /// The same entries by the SHA-256 of their text (hex), for Apollo's
    /// automatic persisted queries: only texts registered with their hash.
    persisted: Mutex<Generations>,
}

impl Default for Documents {
    fn default() -> Self {
        Documents::new(DEFAULT_PERSISTED_QUERIES)
    }
}

/// Persisted queries kept by default (`--persisted-queries`).
pub const DEFAULT_PERSISTED_QUERIES: usize = 1024;

/// Parsed documents by a key, in two generations (see `ENTRIES`) of at most
/// `generation` entries each.
struct Generations {
    newer: HashMap<String, Arc<Entry>>,
    older: HashMap<String, Arc<Entry>>,
    generation: usize,
}

impl Generations {
    fn new(generation: usize) -> Self {
        Generations { newer: HashMap::new(), older: HashMap::new(), generation }
    }

    /// The entry of `query`; one found in the older generation moves to the newer.
    fn get(&mut self, query: &str) -> Option<Arc<Entry>> {
        if let Some(entry) = self.newer.get(query) {
            return Some(entry.clone());
        }
        let (query, entry) = self.older.remove_entry(query)?;
        self.insert(query, entry.clone());
        Some(entry)
    }

    fn insert(&mut self, query: String, entry: Arc<Entry>) {
        if self.newer.len() >= self.generation {
            self.older = std::mem::take(&mut self.newer);
        }
        self.newer.insert(query, entry);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.newer.len() + self.older.len()
    }
}

impl Documents {
    /// A cache that keeps up to `persisted_queries` persisted queries (0:
    /// none, see [`Documents::persists`]).
    pub fn new(persisted_queries: usize) -> Self {
        Documents {
            entries: Mutex::new(Generations::new(ENTRIES)),
            persisted: Mutex::new(Generations::new(persisted_queries.div_ceil(2))),
        }
    }

    /// Whether persisted queries are kept at all.
    pub fn persists(&self) -> bool {
        self.persisted.lock().unwrap_or_else(|e| e.into_inner()).generation > 0
    }

    /// The parse of `query`, from the cache when it is there; `None` when the
    /// text does not parse (async-graphql then reports the syntax error).
    pub fn parse(&self, query: &str, operation_name: Option<&str>, variables: &Variables) -> Option<Parsed> {
        Some(parsed(self.entry(query)?, operation_name, variables))
    }

    /// The parse of the persisted query whose SHA-256 is `hash`; `None` when
    /// none is kept under it.
    pub fn persisted(&self, hash: &str, operation_name: Option<&str>, variables: &Variables) -> Option<Parsed> {
        let entry = self.persisted.lock().unwrap_or_else(|e| e.into_inner()).get(hash)?;
        Some(parsed(entry, operation_name, variables))
    }

    /// The parse of `query`, kept under `hash` (its SHA-256, checked by the
    /// caller) too when it parses and is short enough to be cached.
    pub fn persist(
        &self,
        hash: &str,
        query: &str,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> Option<Parsed> {
        let entry = self.entry(query)?;
        if query.len() <= MAX_CACHED_QUERY_BYTES && self.persists() {
            self.persisted.lock().unwrap_or_else(|e| e.into_inner()).insert(hash.to_string(), entry.clone());
        }
        Some(parsed(entry, operation_name, variables))
    }

    fn entry(&self, query: &str) -> Option<Arc<Entry>> {
        let cached = self.entries.lock().unwrap_or_else(|e| e.into_inner()).get(query);
        Some(match cached {
            Some(entry) => entry,
            None => {
                let document = Arc::new(async_graphql::parser::parse_query(query).ok()?);
                let entry = Arc::new(Entry { document, passed: Mutex::default() });
                if query.len() <= MAX_CACHED_QUERY_BYTES {
                    self.entries.lock().unwrap_or_else(|e| e.into_inner()).insert(query.to_string(), entry.clone());
                }
                entry
            }
        })
    }
}

/// What a request running `entry`'s document needs to know of it.
fn parsed(entry: Arc<Entry>, operation_name: Option<&str>, variables: &Variables) -> Parsed {
    let document = &entry.document;
    let mutation = is_mutation(document, operation_name);
    let session_neutral = is_session_neutral(document, operation_name);
    let validation = shape(document, operation_name, variables).map(|shape| {
        let passed = entry.passed.lock().unwrap_or_else(|e| e.into_inner()).contains(&shape);
        Validation { entry: entry.clone(), shape, passed }
    });
    Parsed { document: (**document).clone(), mutation, session_neutral, validation }
}

/// The shape of a request, when strict validation's result depends on nothing
/// else: the operation it runs is known and declares only variables of the
/// built-in scalars (lists, enums, input objects and custom scalars: `None`).
fn shape(document: &ExecutableDocument, operation_name: Option<&str>, variables: &Variables) -> Option<Shape> {
    let operation = operation_to_run(document, operation_name)?;
    let mut kinds = Vec::with_capacity(operation.node.variable_definitions.len());
    for definition in &operation.node.variable_definitions {
        let BaseType::Named(ty) = &definition.node.var_type.node.base else { return None };
        if !matches!(ty.as_str(), "ID" | "String" | "Boolean" | "Int" | "Float") {
            return None;
        }
        kinds.push(kind(variables.get(&definition.node.name.node)));
    }
    Some(Shape { operation: operation_name.map(str::to_string), kinds })
}

/// The operation a request runs, when the document and the name given say
/// which; `None` when the name is missing among several, or names none.
pub fn operation_to_run<'d>(
    document: &'d ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'d Positioned<OperationDefinition>> {
    match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        // A named operation alone in its document runs without being named.
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    }
}

fn kind(value: Option<&Value>) -> Kind {
    match value {
        None => Kind::Absent,
        Some(Value::Null) => Kind::Null,
        Some(Value::String(_)) => Kind::String,
        Some(Value::Boolean(_)) => Kind::Boolean,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) if i32::try_from(i).is_ok() => Kind::Int32,
            Some(_) => Kind::Int64,
            None => Kind::OtherNumber,
        },
        Some(_) => Kind::Other,
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

fn is_session_neutral(document: &ExecutableDocument, operation_name: Option<&str>) -> bool {
    let Some(operation) = operation_to_run(document, operation_name) else { return false };
    let fields = &operation.node.selection_set.node.items;
    operation.node.ty == OperationType::Mutation
        && !fields.is_empty()
        && fields.iter().all(|s| match &s.node {
            Selection::Field(f) => SESSION_NEUTRAL.contains(&f.node.name.node.as_str()),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(json: &str) -> Variables {
        Variables::from_json(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn tells_mutations_from_queries() {
        let docs = Documents::default();
        let none = Variables::default();
        assert!(!docs.parse("{ viewer { username } }", None, &none).unwrap().mutation);
        assert!(docs.parse("mutation { signOut }", None, &none).unwrap().mutation);
        let two = "query A { viewer { username } } mutation B { signOut }";
        assert!(!docs.parse(two, Some("A"), &none).unwrap().mutation);
        assert!(docs.parse(two, Some("B"), &none).unwrap().mutation);
        assert!(docs.parse(two, None, &none).unwrap().mutation);
        assert!(docs.parse("{ viewer {", None, &none).is_none());
        // The second parse of a text comes from the cache and is the same document.
        assert_eq!(docs.entries.lock().unwrap().len(), 3);
        assert!(docs.parse("mutation { signOut }", None, &none).unwrap().mutation);
        assert_eq!(docs.entries.lock().unwrap().len(), 3);
    }

    #[test]
    fn a_document_in_use_stays_cached_however_many_others_pass_through() {
        let docs = Documents::default();
        let none = Variables::default();
        let hot = "query Hot { viewer { username } }";
        docs.parse(hot, None, &none).unwrap().validation.unwrap().record_pass();
        // Five times the cache's size of other documents, the hot one asked for now and then:
        // it keeps its parse and what its validation learned, and the cache stays bounded.
        for i in 0..5 * ENTRIES {
            docs.parse(&format!("query Q{i} {{ viewer {{ username }} }}"), None, &none).unwrap();
            if i % 100 == 0 {
                assert!(docs.parse(hot, None, &none).unwrap().validation.unwrap().passed(), "lost after {i}");
            }
        }
        assert!(docs.entries.lock().unwrap().len() <= 2 * ENTRIES);
        // One not asked for during a whole generation is dropped.
        assert!(!docs.entries.lock().unwrap().newer.contains_key("query Q0 { viewer { username } }"));
        assert!(!docs.entries.lock().unwrap().older.contains_key("query Q0 { viewer { username } }"));
    }

    #[test]
    fn tells_mutations_that_leave_sessions_alone() {
        let docs = Documents::default();
        let none = Variables::default();
        let neutral = |q: &str, op: Option<&str>| docs.parse(q, op, &none).unwrap().session_neutral;
        assert!(neutral("mutation { changeLoginProfile(id: \"a\", profileId: \"b\") { __typename } }", None));
        // Aliases name the same fields.
        assert!(neutral(
            "mutation { a: deleteProfile(id: \"a\") { __typename } b: deleteProfile(id: \"b\") { __typename } }",
            None
        ));
        // Any other mutation beside them, a fragment, or not knowing which operation runs: not neutral.
        assert!(!neutral("mutation { deleteProfile(id: \"a\") { __typename } signOut }", None));
        assert!(!neutral("mutation { signOut }", None));
        assert!(!neutral("mutation { ...M } fragment M on Mutation { signOut }", None));
        assert!(!neutral("mutation { ... on Mutation { createPerson(input: {name: \"x\"}) { __typename } } }", None));
        let two = "mutation A { createPerson(input: {name: \"x\"}) { __typename } } mutation B { signOut }";
        assert!(neutral(two, Some("A")));
        assert!(!neutral(two, Some("B")));
        assert!(!neutral(two, None));
        // A named operation alone in its document runs without being named, as `shape` knows.
        assert!(neutral("mutation Move { changeLoginProfile(id: \"a\", profileId: \"b\") { __typename } }", None));
        // A query is not a mutation at all.
        assert!(!neutral("{ viewer { username } }", None));
    }

    #[test]
    fn a_shape_counts_as_validated_only_after_it_passed() {
        let docs = Documents::default();
        let q = "query Q($id: ID!, $first: Int) { node(id: $id) { id } users(first: $first) { totalCount } }";
        let first = docs.parse(q, None, &vars(r#"{"id": "a", "first": 5}"#)).unwrap().validation.unwrap();
        assert!(!first.passed());
        first.record_pass();
        // Other values of the same kinds: validated.
        assert!(docs.parse(q, None, &vars(r#"{"id": "b", "first": 7}"#)).unwrap().validation.unwrap().passed());
        // Another kind of value for any variable, or one missing: validated strictly again.
        for other in [
            r#"{"id": 3, "first": 5}"#,
            r#"{"id": "b", "first": "5"}"#,
            r#"{"id": "b", "first": 5000000000}"#,
            r#"{"id": "b", "first": 1.5}"#,
            r#"{"id": "b", "first": null}"#,
            r#"{"id": "b"}"#,
            r#"{"id": ["b"], "first": 5}"#,
        ] {
            assert!(!docs.parse(q, None, &vars(other)).unwrap().validation.unwrap().passed(), "{other}");
        }
        // Another operation of the same text is another shape.
        let two = "query A { viewer { username } } query B { viewer { username } }";
        docs.parse(two, Some("A"), &Variables::default()).unwrap().validation.unwrap().record_pass();
        assert!(docs.parse(two, Some("A"), &Variables::default()).unwrap().validation.unwrap().passed());
        assert!(!docs.parse(two, Some("B"), &Variables::default()).unwrap().validation.unwrap().passed());
        // Which of several operations runs is unknown, or a variable is of an
        // enum, input-object, list or custom scalar type: always strict.
        assert!(docs.parse(two, None, &Variables::default()).unwrap().validation.is_none());
        for declared in ["[ID!]", "Module", "ProfileInput", "DateTime"] {
            let q = format!("query($v: {declared}) {{ viewer {{ username }} }}");
            assert!(docs.parse(&q, None, &vars(r#"{"v": "x"}"#)).unwrap().validation.is_none(), "{declared}");
        }
    }
}
