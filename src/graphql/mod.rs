//! The GraphQL API: schema, per-request context, loaders, typed results.
//! Resolvers are thin: they parse input and call `service`.

pub mod context;
pub mod denials;
pub mod documents;
pub mod error;
pub mod ids;
pub mod introspection;
pub mod lifecycle;
pub mod limits;
pub mod loaders;
pub mod mutation;
pub mod paging;
pub mod persisted;
pub mod query;
pub mod results;
pub mod scalars;
pub mod subscription;
pub mod types;

use async_graphql::ValidationMode;

pub use mutation::AppSchema;

/// Server-wide settings of the API: the limits every request is held to
/// (all checked before anything runs), and the near-limit threshold of pools.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Deepest nesting of fields.
    pub depth: usize,
    /// Most complexity: each field costs 1, a list field its page size times what it selects.
    pub complexity: usize,
    /// Most aliased fields in an operation.
    pub max_aliases: usize,
    /// Most selections (fields, fragment spreads, inline fragments) in an
    /// operation, a fragment counted wherever it is spread.
    pub max_selections: usize,
    /// Most top-level fields in an operation.
    pub max_root_fields: usize,
    /// A pool is near its limit at this usage, in percent of its total.
    pub near_limit_percent: u8,
    /// Most audit events the audit trail's `totalCount` counts.
    pub audit_count_limit: i64,
    /// Whether `__schema` and `__type` are answered (see `introspection`).
    pub introspection: bool,
    /// The limits of failed sign-ins.
    pub sign_in: crate::domain::throttle::SignInLimits,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            depth: 16,
            complexity: 20_000,
            max_aliases: 50,
            max_selections: 1_000,
            max_root_fields: 20,
            near_limit_percent: 90,
            audit_count_limit: lifecycle::AUDIT_COUNT_LIMIT,
            introspection: true,
            sign_in: Default::default(),
        }
    }
}

/// Builds the schema. Nothing request- or user-specific lives in schema data.
pub fn schema(settings: Settings) -> AppSchema {
    build(settings, ValidationMode::Strict)
}

/// The same schema for requests whose document and shape already passed
/// strict validation (see `documents`): it checks only depth and complexity.
pub fn validated_schema(settings: Settings) -> AppSchema {
    build(settings, ValidationMode::Fast)
}

fn build(settings: Settings, mode: ValidationMode) -> AppSchema {
    let builder = async_graphql::Schema::build(
        mutation::Query::default(),
        mutation::Mutation::default(),
        subscription::SubscriptionRoot,
    )
    .register_output_type::<results::RefusalInterface>();
    let builder = if settings.introspection { builder } else { builder.disable_introspection() };
    builder
        .limit_depth(settings.depth)
        .limit_complexity(settings.complexity)
        .validation_mode(mode)
        .data(settings)
        .finish()
}

/// The SDL that `schema.graphql` must equal: async-graphql's own, with the
/// `@specifiedBy` of the `Date` and `DateTime` scalars, which it leaves out
/// by default.
pub fn sdl() -> String {
    schema(Settings::default()).sdl_with_options(async_graphql::SDLExportOptions::new().include_specified_by())
}
