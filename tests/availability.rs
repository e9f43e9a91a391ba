//! Staying available: operations over a limit are refused before anything
//! runs, one request cannot take the database from the others, a request
//! past its deadline is cancelled and rolled back, a transaction that lost
//! a race runs again, and a database outage is answered at once and
//! recovered from without a restart (PostgreSQL reached through a proxy the
//! test cuts and restores).

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// `n` root fields `a0: FIELD`, `a1: FIELD`, ... in one query.
fn aliased(n: usize, field: &str) -> String {
    let fields: Vec<String> = (0..n).map(|i| format!("a{i}: {field}")).collect();
    format!("{{ {} }}", fields.join(" "))
}

both_backends! {
    async fn operations_over_a_limit_are_refused_before_anything_runs(db: Db) {
        let app = TestApp::spawn_flags(db, &["--max-root-fields", "3", "--max-aliases", "4", "--max-selections", "40"]).await;
        // A token that was never issued: had anything run, the answer would be UNAUTHENTICATED.
        let token = Some("never-issued");
        let cases = [
            (aliased(4, "viewer { username }"), "rootFields", 3),
            (format!("{{ viewer {{ {} }} }}", (0..5).map(|i| format!("u{i}: username")).collect::<Vec<_>>().join(" ")), "aliases", 4),
            (format!("{{ viewer {{ {} }} }}", vec!["username"; 40].join(" ")), "selections", 40),
            // Fragments count wherever they are spread.
            ("{ ...F } fragment F on Query { viewer { username } sites { id } modules { code } licensePools { used } }".to_string(), "rootFields", 3),
        ];
        for (query, limit, max) in cases {
            let (status, body) = app.gql_status(token, &query, json!({})).await;
            assert_eq!(status, 400, "{body}");
            assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
            assert_eq!(body["errors"][0]["extensions"]["limit"], limit, "{body}");
            assert_eq!(body["errors"][0]["extensions"]["max"], max, "{body}");
            assert!(body.get("data").is_none(), "{body}");
        }
        // Under the limits the same token is checked, and refused.
        let (status, body) = app.gql_status(token, &aliased(3, "viewer { username }"), json!({})).await;
        assert_eq!((status, error_code(&body)), (200, "UNAUTHENTICATED"), "{body}");

        // The defaults refuse the 1,000 aliased `users` of a hostile request, and
        // depth and complexity, also checked before anything runs, answer 400 too.
        let app = TestApp::spawn(db).await;
        let hostile = aliased(1000, "users(first: 1, filter: {nameContains: \"x\"}) { nodes { id } }");
        let (status, body) = app.gql_status(token, &hostile, json!({})).await;
        assert_eq!((status, error_code(&body)), (400, "QUERY_TOO_COMPLEX"), "{body}");
        let wide = "users(first: 100) { nodes { id username validUntil isAdministrator person { id name email } profile { id name userCount } } }";
        let (status, body) = app.gql_status(token, &aliased(20, wide), json!({})).await;
        assert_eq!((status, error_code(&body)), (400, "QUERY_TOO_COMPLEX"), "{body}");
        let deep = format!("{{ users(first: 1) {{ nodes {{ {}username{} }} }} }}", "person { user { ".repeat(8), " } }".repeat(8));
        let (status, body) = app.gql_status(token, &deep, json!({})).await;
        assert_eq!((status, error_code(&body)), (400, "QUERY_TOO_DEEP"), "{body}");
        // The playground's introspection stays within the defaults.
        let introspection = include_str!("fixtures/introspection.graphql");
        let (status, body) = app.gql_status(None, introspection, json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["data"]["__schema"]["types"].as_array().is_some_and(|t| t.len() > 20), "{body}");
    }
}

both_backends! {
    async fn a_hostile_request_leaves_a_small_read_of_another_site_answering(db: Db) {
        // Limits raised so the hostile request runs: it is the pool's share that must hold.
        let unlimited = ["--max-root-fields", "100000", "--max-aliases", "100000", "--max-selections", "1000000",
                         "--max-complexity", "100000000", "--request-timeout-ms", "60000"];
        let app = TestApp::spawn_flags(db, &unlimited).await;
        let other = app.site("Other", &[("CASE", 5), ("DOCUMENT", 5)], false).await;
        let bench = license_gateway::service::bootstrap::generate_bench(&app.store, 20_000, 10, Some(PASSWORD))
            .await
            .expect("generate the big site");
        let heavy_token = app.sign_in(&bench.admin_username, PASSWORD).await;
        // Every field scans the site's 20,000 people for a name nobody has.
        let heavy_query = aliased(600, "users(first: 1, filter: {nameContains: \"zzqq\"}) { nodes { id } }");
        let heavy = {
            let (client, url) = (app.client.clone(), app.url.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let body: Value = client.post(format!("{url}/graphql")).bearer_auth(heavy_token)
                    .json(&json!({ "query": heavy_query })).send().await.unwrap().json().await.unwrap();
                (started.elapsed(), body)
            })
        };
        tokio::time::sleep(Duration::from_millis(150)).await;
        let started = Instant::now();
        let small = app.ok(Some(&other.admin_token), "{ licensePools { used } }", json!({})).await;
        let small_took = started.elapsed();
        assert_eq!(small["licensePools"].as_array().map(Vec::len), Some(2), "{small}");
        assert!(!heavy.is_finished(), "the heavy request ended before the small read was answered");
        let (heavy_took, body) = heavy.await.unwrap();
        assert!(body.get("errors").is_none(), "{body}");
        assert_eq!(body["data"]["a599"]["nodes"], json!([]));
        // Served beside it, not after it: the small read waited for a free connection, not for the heavy request.
        assert!(small_took * 5 < heavy_took, "small read took {small_took:?}, the heavy request {heavy_took:?}");
    }
}

/// A write lock on the whole database (SQLite) or on every pool row
/// (PostgreSQL), held by another connection until it is dropped.
struct Blocker(sqlx::AnyConnection);

impl Blocker {
    async fn hold(db: Db, database_url: &str) -> Blocker {
        use sqlx::Connection;
        let mut conn = sqlx::AnyConnection::connect(database_url).await.expect("blocker connects");
        let lock = match db {
            Db::Sqlite => "BEGIN IMMEDIATE",
            Db::Postgres => "BEGIN; SELECT site_id FROM license_pools FOR UPDATE",
        };
        sqlx::raw_sql(lock).execute(&mut conn).await.expect("blocker locks");
        Blocker(conn)
    }

    async fn release(mut self) {
        sqlx::raw_sql("ROLLBACK").execute(&mut self.0).await.expect("blocker releases");
    }
}

const MOVE: &str = "mutation($id: ID!, $p: ID!) { changeLoginProfile(id: $id, profileId: $p) { __typename } }";

both_backends! {
    async fn a_request_past_its_deadline_is_cancelled_and_its_transaction_rolled_back(db: Db) {
        let app = TestApp::spawn(db).await;
        let site = app.site("Deadline", &[("CASE", 5), ("DOCUMENT", 5)], false).await;
        let both = site.profile(&app, "Both", &["CASE", "DOCUMENT"]).await;
        let user = site.user(&app, "Dana Deadline", &site.parking_profile).await;
        // The short deadline only where it is tested: set-up (password hashing) may be slow on a busy host.
        let hasty = app.another_instance_flags(&["--request-timeout-ms", "700"]).await;
        let blocker = Blocker::hold(db, &app.database_url).await;
        let started = Instant::now();
        let (status, body) = hasty.gql_status(Some(&site.admin_token), MOVE, json!({ "id": user, "p": both })).await;
        let took = started.elapsed();
        assert_eq!((status, error_code(&body)), (504, "REQUEST_TIMEOUT"), "{body}");
        assert!(took < Duration::from_secs(5), "answered after {took:?}");
        blocker.release().await;
        // Nothing of the cancelled change was kept, and the server goes on working.
        assert_eq!(site.pool(&app, "CASE").await, (5, 0, 5));
        let data = app.ok(Some(&site.admin_token), MOVE, json!({ "id": user, "p": both })).await;
        assert_eq!(data["changeLoginProfile"]["__typename"], "UpdateLoginSuccess", "{data}");
        assert_eq!(site.pool(&app, "CASE").await, (5, 1, 4));
        assert_counters_match(&app.store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_found_the_database_busy_is_run_again() {
    // SQLite's write lock is held by another process's connection for longer than
    // a statement may wait for it: the first tries fail busy, a later one succeeds.
    let app = TestApp::spawn_flags(Db::Sqlite, &["--db-statement-timeout-ms", "150", "--db-retries", "6"]).await;
    let site = app.site("Busy", &[("CASE", 5)], false).await;
    let case = site.profile(&app, "Case", &["CASE"]).await;
    let user = site.user(&app, "Bea Busy", &site.parking_profile).await;
    let blocker = Blocker::hold(Db::Sqlite, &app.database_url).await;
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        blocker.release().await;
    });
    let data = app.ok(Some(&site.admin_token), MOVE, json!({ "id": user, "p": case })).await;
    assert_eq!(data["changeLoginProfile"]["__typename"], "UpdateLoginSuccess", "{data}");
    release.await.unwrap();
    assert_eq!(site.pool(&app, "CASE").await, (5, 1, 4));

    // With no retries the same wait is answered SERVICE_UNAVAILABLE, and nothing changed.
    let strict = app.another_instance_flags(&["--db-statement-timeout-ms", "150", "--db-retries", "0"]).await;
    let blocker = Blocker::hold(Db::Sqlite, &app.database_url).await;
    let (status, body) =
        strict.gql_status(Some(&site.admin_token), MOVE, json!({ "id": user, "p": site.parking_profile })).await;
    blocker.release().await;
    assert_eq!((status, error_code(&body)), (503, "SERVICE_UNAVAILABLE"), "{body}");
    assert_eq!(site.pool(&app, "CASE").await, (5, 1, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_needs_every_migration_applied() {
    let app = TestApp::spawn(Db::Sqlite).await;
    assert_eq!(app.get("/health/ready").await.0, 200);
    app.store
        .execute_raw("DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)")
        .await
        .unwrap();
    let (status, body) = app.get("/health/ready").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("migrations not applied"), "{body}");
    assert_eq!(app.get("/health/live").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_answered_at_once_and_recovered_from() {
    let Some(_) = postgres_url() else { return };
    let direct = fresh_database(Db::Postgres).await;
    let proxy = Proxy::start(&direct).await;
    let app = TestApp::spawn_on(&proxy.url, &["--db-acquire-timeout-ms", "1000"]).await;
    let site = app.site("Outage", &[("CASE", 5)], false).await;
    let people = "{ people(first: 100) { nodes { name } } }";
    let before = app.ok(Some(&site.admin_token), people, json!({})).await;
    assert_eq!(app.get("/health/ready").await.0, 200);

    proxy.cut();
    for (query, variables) in [
        ("{ licensePools { used } }", json!({})),
        (
            "mutation($i: CreatePersonInput!) { createPerson(input: $i) { __typename } }",
            json!({ "i": { "name": "Lost" } }),
        ),
    ] {
        let started = Instant::now();
        let (status, body) = app.gql_status(Some(&site.admin_token), query, variables).await;
        let took = started.elapsed();
        assert_eq!((status, error_code(&body)), (503, "SERVICE_UNAVAILABLE"), "{body}");
        assert!(took < Duration::from_secs(4), "answered after {took:?}");
    }
    let started = Instant::now();
    let (status, body) = app.get("/health/ready").await;
    assert_eq!(status, 503, "{body}");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(app.get("/health/live").await.0, 200);

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.get("/health/ready").await.0 != 200 {
        assert!(Instant::now() < deadline, "not ready again 10 s after the database came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Serving again without a restart, and the change refused during the outage was not made.
    assert_eq!(app.ok(Some(&site.admin_token), people, json!({})).await, before);
    assert_counters_match(&app.store).await;
}
