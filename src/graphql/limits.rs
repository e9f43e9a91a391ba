//! Limits on the size of an operation, checked on its parsed document before
//! anything runs: how many aliases, selections and root fields it has, and
//! that it signs in at most once (each `signIn` checks a password, the
//! costly part of a request, so one request may not check many).
//! Depth and complexity (list fields weigh their page size times what they
//! select) are async-graphql's own limits, checked at validation, also
//! before anything runs. Together they keep one request from asking for
//! thousands of statements, which would hold the database from everyone.

use std::collections::HashMap;

use async_graphql::Name;
use async_graphql::Positioned;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, FragmentDefinition, OperationDefinition, Selection, SelectionSet,
};

use super::Settings;

/// A limit an operation exceeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    /// Which limit: `aliases`, `selections`, `rootFields` or `signIn`.
    pub limit: &'static str,
    /// The limit in force.
    pub max: usize,
}

/// Most `signIn` fields in an operation.
pub const MAX_SIGN_INS: usize = 1;

impl Exceeded {
    /// The stable `extensions.code` of the answer.
    pub fn code(&self) -> &'static str {
        if self.limit == "signIn" {
            super::error::codes::TOO_MANY_SIGN_INS
        } else {
            super::error::codes::QUERY_TOO_COMPLEX
        }
    }

    /// A sentence a person understands.
    pub fn message(&self) -> String {
        if self.limit == "signIn" {
            return "A request may sign in only once, and this one has more than one signIn field; nothing was run \
                    and no password was checked."
                .to_string();
        }
        let what = match self.limit {
            "aliases" => "aliased fields",
            "selections" => "selections (fields and fragments, a fragment counted wherever it is spread)",
            _ => "top-level fields",
        };
        format!("The operation has more than {} {what}; nothing was run. Split it into smaller requests.", self.max)
    }
}

/// Checks the operation a request runs (every operation of the document
/// when the request does not say which) against the limits of `settings`.
/// Stops counting at the first limit exceeded, so a hostile document costs
/// no more than the limits allow.
pub fn check(document: &ExecutableDocument, operation_name: Option<&str>, settings: &Settings) -> Result<(), Exceeded> {
    let operations: Vec<&Positioned<OperationDefinition>> = match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), _) => vec![op],
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).into_iter().collect(),
        (DocumentOperations::Multiple(ops), None) => ops.values().collect(),
    };
    for operation in operations {
        let mut count =
            Count { settings, fragments: &document.fragments, aliases: 0, selections: 0, root: 0, sign_ins: 0 };
        count.selection_set(&operation.node.selection_set.node, true, &mut Vec::new())?;
    }
    Ok(())
}

/// What has been counted of one operation so far.
struct Count<'a> {
    settings: &'a Settings,
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    aliases: usize,
    selections: usize,
    root: usize,
    sign_ins: usize,
}

impl<'a> Count<'a> {
    /// Counts `set` (the operation's own when `root`), expanding fragments;
    /// `spreading` holds the fragments being expanded, so a cycle (which
    /// validation refuses later) is not followed.
    fn selection_set(
        &mut self,
        set: &'a SelectionSet,
        root: bool,
        spreading: &mut Vec<&'a Name>,
    ) -> Result<(), Exceeded> {
        for selection in &set.items {
            self.selections += 1;
            bounded(self.selections, self.settings.max_selections, "selections")?;
            match &selection.node {
                Selection::Field(field) => {
                    if root {
                        self.root += 1;
                        bounded(self.root, self.settings.max_root_fields, "rootFields")?;
                        if field.node.name.node == "signIn" {
                            self.sign_ins += 1;
                            bounded(self.sign_ins, MAX_SIGN_INS, "signIn")?;
                        }
                    }
                    if field.node.alias.is_some() {
                        self.aliases += 1;
                        bounded(self.aliases, self.settings.max_aliases, "aliases")?;
                    }
                    self.selection_set(&field.node.selection_set.node, false, spreading)?;
                }
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set.node, root, spreading)?;
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    let Some(fragment) = self.fragments.get(name) else { continue };
                    if spreading.contains(&name) {
                        continue;
                    }
                    spreading.push(name);
                    self.selection_set(&fragment.node.selection_set.node, root, spreading)?;
                    spreading.pop();
                }
            }
        }
        Ok(())
    }
}

fn bounded(found: usize, max: usize, limit: &'static str) -> Result<(), Exceeded> {
    if found > max { Err(Exceeded { limit, max }) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(query: &str, settings: &Settings) -> Result<(), Exceeded> {
        check(&async_graphql::parser::parse_query(query).unwrap(), None, settings)
    }

    fn small() -> Settings {
        Settings { max_aliases: 2, max_selections: 10, max_root_fields: 3, ..Settings::default() }
    }

    #[test]
    fn counts_aliases_selections_and_root_fields() {
        let s = small();
        assert_eq!(check_text("{ a: viewer { username } b: viewer { username } }", &s), Ok(()));
        let three = "{ a: viewer { username } b: viewer { username } c: viewer { username } }";
        assert_eq!(check_text(three, &s).unwrap_err().limit, "aliases");
        let roots = "{ viewer { username } sites { id } modules { code } licensePools { used } }";
        assert_eq!(check_text(roots, &s).unwrap_err().limit, "rootFields");
        let wide = "{ viewer { a b c d e f g h i j } }";
        assert_eq!(check_text(wide, &s).unwrap_err(), Exceeded { limit: "selections", max: 10 });
    }

    #[test]
    fn fragments_count_wherever_they_are_spread() {
        let s = small();
        // Spread at the root, a fragment's fields are root fields.
        let q =
            "{ ...F } fragment F on Query { viewer { username } sites { id } modules { code } licensePools { used } }";
        assert_eq!(check_text(q, &s).unwrap_err().limit, "rootFields");
        // Each spread counts the fragment again: nested spreads cannot multiply past the limit unseen.
        let q = "{ viewer { ...A ...A } } fragment A on Viewer { ...B ...B } fragment B on Viewer { username name }";
        assert_eq!(check_text(q, &s).unwrap_err().limit, "selections");
        // Empty fragments spread in a tree still count as selections.
        let q = "{ viewer { ...A } } fragment A on Viewer { ...B ...B ...B } fragment B on Viewer { ...C ...C ...C } \
                 fragment C on Viewer { __typename }";
        assert_eq!(check_text(q, &s).unwrap_err().limit, "selections");
        // A cycle is not followed (validation refuses it later).
        assert_eq!(check_text("{ viewer { ...A } } fragment A on Viewer { ...A }", &s), Ok(()));
    }

    #[test]
    fn only_the_operation_that_runs_counts() {
        let s = small();
        let doc = async_graphql::parser::parse_query(
            "query Small { viewer { username } } query Big { a: viewer { id } b: viewer { id } c: viewer { id } }",
        )
        .unwrap();
        assert_eq!(check(&doc, Some("Small"), &s), Ok(()));
        assert!(check(&doc, Some("Big"), &s).is_err());
        assert!(check(&doc, None, &s).is_err());
    }

    #[test]
    fn an_operation_signs_in_at_most_once() {
        let s = Settings::default();
        let one = "mutation { signIn(username: \"a\", password: \"b\") { __typename } }";
        assert_eq!(check_text(one, &s), Ok(()));
        let aliased = "mutation { a: signIn(username: \"a\", password: \"b\") { __typename } \
                       b: signIn(username: \"a\", password: \"c\") { __typename } }";
        let exceeded = check_text(aliased, &s).unwrap_err();
        assert_eq!((exceeded.limit, exceeded.max, exceeded.code()), ("signIn", 1, "TOO_MANY_SIGN_INS"));
        let spread = "mutation { signIn(username: \"a\", password: \"b\") { __typename } ...F ... { x: signOut } } \
                      fragment F on Mutation { signIn(username: \"a\", password: \"c\") { __typename } }";
        assert_eq!(check_text(spread, &s).unwrap_err().limit, "signIn");
        let inline = "mutation { ... on Mutation { a: signIn(username: \"a\", password: \"b\") { __typename } } \
                      ... { b: signIn(username: \"a\", password: \"c\") { __typename } } }";
        assert_eq!(check_text(inline, &s).unwrap_err().limit, "signIn");
    }

    #[test]
    fn the_defaults_admit_the_playgrounds_introspection() {
        let introspection = include_str!("../../tests/fixtures/introspection.graphql");
        assert_eq!(check_text(introspection, &Settings::default()), Ok(()));
    }
}
