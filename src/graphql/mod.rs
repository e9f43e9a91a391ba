//! The GraphQL API: schema, per-request context, loaders, typed results.
//! Resolvers are thin: they parse input and call `service`.

pub mod context;
pub mod error;
pub mod ids;
pub mod loaders;
pub mod mutation;
pub mod query;
pub mod results;
pub mod types;

pub use mutation::AppSchema;

/// Limits every request is held to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub depth: usize,
    pub complexity: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { depth: 16, complexity: 20_000 }
    }
}

/// Builds the schema. Nothing request-specific lives in schema data.
pub fn schema(limits: Limits) -> AppSchema {
    async_graphql::Schema::build(query::QueryRoot, mutation::MutationRoot, async_graphql::EmptySubscription)
        .register_output_type::<results::RefusalInterface>()
        .limit_depth(limits.depth)
        .limit_complexity(limits.complexity)
        .finish()
}

/// The SDL that `schema.graphql` must equal.
pub fn sdl() -> String {
    schema(Limits::default()).sdl()
}
