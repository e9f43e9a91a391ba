//! The contract: `schema.graphql` equals the served schema, and every type,
//! field, argument and enum value the schema ships is documented.

use license_gateway::graphql::{Settings, schema, sdl};
use serde_json::Value;

#[test]
fn schema_graphql_equals_the_served_schema() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql at the top level");
    let served = sdl();
    if committed != served {
        let line = committed.lines().zip(served.lines()).position(|(a, b)| a != b).map_or(0, |i| i + 1);
        panic!(
            "schema.graphql differs from the served schema (first difference near line {line}).\n\
             If the change is intended, update it with:\n    cargo run --quiet -- schema > schema.graphql"
        );
    }
}

#[tokio::test]
async fn every_type_field_argument_and_enum_value_is_documented() {
    let q = "{ __schema { types { name kind description
        fields { name description args { name description } }
        inputFields { name description }
        enumValues { name description } } } }";
    let resp = schema(Settings::default()).execute(q).await;
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
    let data: Value = resp.data.into_json().unwrap();
    let mut missing = Vec::new();
    let empty = |v: &Value| v.as_str().is_none_or(|s| s.trim().is_empty());
    for t in data["__schema"]["types"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        // Introspection types, and `ID`, which async-graphql ships without a description.
        if name.starts_with("__") || name == "ID" {
            continue;
        }
        if empty(&t["description"]) {
            missing.push(name.to_string());
        }
        for f in t["fields"].as_array().into_iter().flatten() {
            if empty(&f["description"]) {
                missing.push(format!("{name}.{}", f["name"]));
            }
            for a in f["args"].as_array().into_iter().flatten() {
                if empty(&a["description"]) {
                    missing.push(format!("{name}.{}({})", f["name"], a["name"]));
                }
            }
        }
        for f in t["inputFields"].as_array().into_iter().flatten() {
            if empty(&f["description"]) {
                missing.push(format!("{name}.{}", f["name"]));
            }
        }
        for v in t["enumValues"].as_array().into_iter().flatten() {
            if empty(&v["description"]) {
                missing.push(format!("{name}.{}", v["name"]));
            }
        }
    }
    assert!(missing.is_empty(), "undocumented schema elements:\n{}", missing.join("\n"));
}

/// The introspection query GraphiQL sends on load (graphql-js
/// `getIntrospectionQuery`, with its nine-deep `ofType` chain) passes the
/// depth and complexity limits, so the playground's docs pane works.
#[tokio::test]
async fn the_playground_introspection_query_passes_the_limits() {
    let type_ref = "kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }";
    let q = format!(
        "query IntrospectionQuery {{ __schema {{ queryType {{ name }} mutationType {{ name }} subscriptionType {{ name }}
          types {{ kind name description fields(includeDeprecated: true) {{ name description args {{ name description type {{ {type_ref} }} defaultValue }}
          type {{ {type_ref} }} isDeprecated deprecationReason }} inputFields {{ name description type {{ {type_ref} }} defaultValue }}
          interfaces {{ {type_ref} }} enumValues(includeDeprecated: true) {{ name description isDeprecated deprecationReason }}
          possibleTypes {{ {type_ref} }} }}
          directives {{ name description locations args {{ name description type {{ {type_ref} }} defaultValue }} }} }} }}"
    );
    let resp = schema(Settings::default()).execute(q.as_str()).await;
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
}

/// The two migration folders are one schema in two dialects: the SQLite
/// files are the PostgreSQL files with SQLite's identity column, and must
/// stay so (a drift between them would make the backends behave apart).
/// A PostgreSQL-only migration (`*_postgres.sql`: a stored procedure that
/// SQLite runs as statements of a transaction instead) has no twin.
#[test]
fn sqlite_migrations_are_the_postgres_migrations_in_sqlite_dialect() {
    let dir = |d: &str| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(d);
    let mut names: Vec<_> = std::fs::read_dir(dir("postgres")).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert!(!names.is_empty());
    for name in names {
        if name.to_string_lossy().ends_with("_postgres.sql") {
            assert!(!dir("sqlite").join(&name).exists(), "{name:?} is PostgreSQL-only");
            continue;
        }
        let pg = std::fs::read_to_string(dir("postgres").join(&name)).unwrap();
        let lite =
            std::fs::read_to_string(dir("sqlite").join(&name)).unwrap_or_else(|_| panic!("sqlite/{name:?} missing"));
        let expected = pg
            .replace("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "INTEGER PRIMARY KEY")
            .replace("(PostgreSQL)", "(SQLite)")
            .replace("../sqlite/", "../postgres/");
        assert_eq!(lite, expected, "migrations/sqlite/{name:?} drifted from its PostgreSQL twin");
    }
}
