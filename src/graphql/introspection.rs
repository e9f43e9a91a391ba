//! Whether a document asks for introspection (`__schema` or `__type`), so a
//! server started with introspection off refuses it with a stable code before
//! anything runs. (`__typename` is not introspection of the schema and stays
//! allowed.) The schema is also built without introspection then, so a
//! document this check missed still learns nothing.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// The fields that introspect the schema.
const INTROSPECTION_FIELDS: [&str; 2] = ["__schema", "__type"];

/// Whether any operation or fragment of `document` selects `__schema` or
/// `__type`, at any depth (where they are not valid, validation would refuse
/// them anyway).
pub fn requested(document: &ExecutableDocument) -> bool {
    document.operations.iter().any(|(_, op)| selects(&op.node.selection_set.node))
        || document.fragments.values().any(|f| selects(&f.node.selection_set.node))
}

fn selects(set: &SelectionSet) -> bool {
    set.items.iter().any(|selection| match &selection.node {
        Selection::Field(field) => {
            INTROSPECTION_FIELDS.contains(&field.node.name.node.as_str()) || selects(&field.node.selection_set.node)
        }
        Selection::InlineFragment(inline) => selects(&inline.node.selection_set.node),
        Selection::FragmentSpread(_) => false,
    })
}

/// The message of the refusal.
pub const REFUSED: &str = "Introspection is turned off on this server (`--introspection false`).";

#[cfg(test)]
mod tests {
    use super::*;

    fn asks(query: &str) -> bool {
        requested(&async_graphql::parser::parse_query(query).unwrap())
    }

    #[test]
    fn finds_introspection_wherever_it_is_selected() {
        assert!(asks("{ __schema { types { name } } }"));
        assert!(asks("{ t: __type(name: \"User\") { name } }"));
        assert!(asks("query A { viewer { __typename } } query B { ... on Query { __schema { queryType { name } } } }"));
        assert!(asks("{ ...F } fragment F on Query { __type(name: \"Site\") { name } }"));
        assert!(!asks("{ viewer { __typename } }"));
        assert!(!asks("mutation { signOut }"));
    }
}
