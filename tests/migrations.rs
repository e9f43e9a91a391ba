//! Upgrading an existing SQLite file keeps its data: migration 0004 rebuilds
//! `profiles` and `responsibilities` (so that their ids are never reused) and
//! must keep every row, every row that refers to them, and foreign keys on;
//! 0008 splits stored audit details; after 0009 the stored names are folded;
//! 0011 gives the pending rows of profiles' user counts their site (both
//! databases).

mod common;

use common::*;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

async fn rows(pool: &SqlitePool, sql: &'static str) -> Vec<String> {
    let rows = sqlx::query(sql).fetch_all(pool).await.unwrap();
    rows.iter().map(|r| r.get::<String, _>(0)).collect()
}

#[tokio::test]
async fn upgrading_a_sqlite_file_to_ids_never_reused_keeps_every_row() {
    let path =
        std::env::temp_dir().join(format!("lg-upgrade-{}-{:?}.db", std::process::id(), std::time::SystemTime::now()));
    let options = SqliteConnectOptions::new().filename(&path).create_if_missing(true).foreign_keys(true);
    // One connection, as a migration on start-up has.
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
    let migrator = sqlx::migrate!("./migrations/sqlite");
    migrator.run_to(3, &pool).await.unwrap();
    for sql in [
        "INSERT INTO sites (id, name, name_key, created_at) VALUES (1, 'Site', 'site', 0)",
        "INSERT INTO license_pools (site_id, module_id, total, used) VALUES (1, 1, 5, 1), (1, 2, 5, 0)",
        "INSERT INTO profiles (id, site_id, name, name_key, user_count, created_at) VALUES \
         (1, 1, 'None', 'none', 0, 0), (2, 1, 'Case', 'case', 1, 0), (3, 1, 'Newest', 'newest', 0, 0)",
        "INSERT INTO profile_modules (site_id, profile_id, module_id) VALUES (1, 2, 1)",
        "INSERT INTO people (id, site_id, name, created_at) VALUES (1, 1, 'Ada', 0)",
        "INSERT INTO logins (id, site_id, person_id, username, username_key, password_hash, profile_id, created_at) \
         VALUES (1, 1, 1, 'ada', 'ada', 'x', 2, 0)",
        "INSERT INTO responsibilities (id, site_id, person_id, kind, name, created_at) VALUES \
         (1, 1, 1, 'FORM', 'Leave form', 0), (2, 1, 1, 'DOCUMENT_FOLDER', 'Contracts', 0)",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }

    migrator.run(&pool).await.unwrap();

    let profiles = "SELECT id || ' ' || site_id || ' ' || name || ' ' || user_count FROM profiles ORDER BY id";
    assert_eq!(rows(&pool, profiles).await, ["1 1 None 0", "2 1 Case 1", "3 1 Newest 0"]);
    // Dropping the old table cascaded nothing, and what refers to profiles still does.
    assert_eq!(rows(&pool, "SELECT profile_id || ':' || module_id FROM profile_modules").await, ["2:1"]);
    assert_eq!(rows(&pool, "SELECT username || ':' || profile_id FROM logins").await, ["ada:2"]);
    let duties = "SELECT id || ' ' || kind || ' ' || name FROM responsibilities ORDER BY id";
    assert_eq!(rows(&pool, duties).await, ["1 FORM Leave form", "2 DOCUMENT_FOLDER Contracts"]);
    let check = sqlx::query("PRAGMA foreign_key_check").fetch_all(&pool).await.unwrap();
    assert!(check.is_empty(), "{} foreign key violations", check.len());
    // Foreign keys are enforced again, against the rebuilt table.
    let orphan = "INSERT INTO profile_modules (site_id, profile_id, module_id) VALUES (1, 99, 1)";
    assert!(sqlx::query(orphan).execute(&pool).await.is_err(), "a module of no profile was accepted");
    // And the newest id, once deleted, is not given again.
    sqlx::query("DELETE FROM profiles WHERE id = 3").execute(&pool).await.unwrap();
    let insert =
        "INSERT INTO profiles (site_id, name, name_key, created_at) VALUES (1, 'Next', 'next', 0) RETURNING id";
    let id: i64 = sqlx::query(insert).fetch_one(&pool).await.unwrap().get(0);
    assert_eq!(id, 4);
    pool.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// Migration 0008 splits each stored `detail` (`CODE: message` for a
/// refusal) into `code` and `message`; other details become the message.
#[tokio::test]
async fn upgrading_splits_stored_audit_details_into_code_and_message() {
    let path =
        std::env::temp_dir().join(format!("lg-audit-{}-{:?}.db", std::process::id(), std::time::SystemTime::now()));
    let options = SqliteConnectOptions::new().filename(&path).create_if_missing(true).foreign_keys(true);
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
    let migrator = sqlx::migrate!("./migrations/sqlite");
    migrator.run_to(6, &pool).await.unwrap();
    let insert = "INSERT INTO audit_events (id, site_id, at, actor, action, target, outcome, rule, detail) VALUES \
         (1, 1, 0, 'A', 'createLogin', '', 'REFUSED', 'R4', 'LICENSE_LIMIT_EXCEEDED: Not enough licenses: 1 Case license missing.'), \
         (2, 1, 0, 'A', 'createPerson', '', 'REFUSED', 'STAFF', 'FORBIDDEN: Not allowed: staff: it says so.'), \
         (3, 1, 0, 'A', 'createPerson', 'person:1', 'ACCEPTED', NULL, ''), \
         (4, 1, 0, 'A', 'generateDataset', 'site:1', 'ACCEPTED', NULL, '10 people, headroom 5')";
    sqlx::query(insert).execute(&pool).await.unwrap();

    migrator.run(&pool).await.unwrap();

    let split = "SELECT id || '|' || COALESCE(code, '-') || '|' || message FROM audit_events ORDER BY id";
    assert_eq!(
        rows(&pool, split).await,
        [
            "1|LICENSE_LIMIT_EXCEEDED|Not enough licenses: 1 Case license missing.",
            "2|FORBIDDEN|Not allowed: staff: it says so.",
            "3|-|",
            "4|-|10 people, headroom 5",
        ]
    );
    pool.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// Migration 0009 adds the folded copies of searched names; SQL cannot
/// compute them on SQLite, so `Store::migrate` fills them right after, and
/// brings the profiles' name keys (lower-cased before) to the same folding.
#[tokio::test]
async fn upgrading_folds_the_stored_names_for_search() {
    let path =
        std::env::temp_dir().join(format!("lg-fold-{}-{:?}.db", std::process::id(), std::time::SystemTime::now()));
    let options = SqliteConnectOptions::new().filename(&path).create_if_missing(true).foreign_keys(true);
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
    sqlx::migrate!("./migrations/sqlite").run_to(8, &pool).await.unwrap();
    for sql in [
        "INSERT INTO sites (id, name, name_key, created_at) VALUES (1, 'Site', 'site', 0)",
        "INSERT INTO profiles (id, site_id, name, name_key, user_count, created_at) VALUES \
         (1, 1, 'Straße', 'straße', 0, 0), (2, 1, 'Ärende', 'ärende', 0, 0)",
        "INSERT INTO people (id, site_id, name, created_at) VALUES (1, 1, 'Åsa Öberg', 0), (2, 1, 'ΟΔΥΣΣΕΑΣ', 0)",
        "INSERT INTO audit_events (id, site_id, at, actor, action, target, outcome, detail) VALUES \
         (1, 1, 0, 'Ängel Lind', 'createPerson', 'person:1', 'ACCEPTED', '')",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;

    let url = format!("sqlite:{}", path.display());
    let store =
        license_gateway::store::Store::connect(&url, &license_gateway::store::PoolSettings::tool(1)).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;

    let options = SqliteConnectOptions::new().filename(&path);
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
    assert_eq!(rows(&pool, "SELECT name_folded FROM people ORDER BY id").await, ["åsa öberg", "οδυσσεασ"]);
    assert_eq!(rows(&pool, "SELECT actor_folded FROM audit_events").await, ["ängel lind"]);
    assert_eq!(rows(&pool, "SELECT name_key FROM profiles ORDER BY id").await, ["strasse", "ärende"]);
    pool.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

both_backends! {
    /// Migration 0011 gives each pending row of profiles' user counts its
    /// profile's site and drops the rows of a deleted profile; a row without
    /// a site (written by an instance of the previous release during a
    /// rolling upgrade) is still accepted, and the background fold adds every
    /// row to the count it belongs to as before.
    async fn upgrading_gives_pending_user_count_rows_their_profiles_site(db: Db) {
        let url = fresh_database(db).await;
        sqlx::any::install_default_drivers();
        let any_url = if db == Db::Sqlite { format!("{url}?mode=rwc") } else { url.clone() };
        let pool = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&any_url).await.unwrap();
        let migrator = match db {
            Db::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Db::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator.run_to(10, &pool).await.unwrap();
        for sql in [
            "INSERT INTO sites (id, name, name_key, created_at) VALUES (1, 'One', 'one', 0), (2, 'Two', 'two', 0)",
            "INSERT INTO profiles (id, site_id, name, name_key, user_count, created_at) VALUES \
             (1, 1, 'Case', 'case', 2, 0), (2, 2, 'Case', 'case', 0, 0), (3, 2, 'Gone', 'gone', 0, 0)",
            // Users moved in and out of profile 1 (site 1) and profile 2 (site 2), and
            // in and out of profile 3, deleted since, without users, before a fold.
            "INSERT INTO profile_user_deltas (profile_id, delta) VALUES \
             (1, -2), (2, 2), (2, -1), (1, 1), (3, 1), (3, -1)",
            "DELETE FROM profiles WHERE id = 3",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }

        migrator.run(&pool).await.unwrap();

        let all = "SELECT CAST(site_id AS TEXT) || ' ' || CAST(profile_id AS TEXT) || ' ' || CAST(delta AS TEXT) \
                   FROM profile_user_deltas ORDER BY profile_id, delta";
        let rows: Vec<String> =
            sqlx::query(all).fetch_all(&pool).await.unwrap().iter().map(|r| r.get::<String, _>(0)).collect();
        assert_eq!(rows, ["1 1 -2", "1 1 1", "2 2 -1", "2 2 2"]);
        // What an instance of the previous release writes during a rolling upgrade.
        let unsited = "INSERT INTO profile_user_deltas (profile_id, delta) VALUES (1, 1)";
        sqlx::query(unsited).execute(&pool).await.expect("a row without its site (the previous release) is refused");
        pool.close().await;

        let store = license_gateway::store::Store::connect(&url, &license_gateway::store::PoolSettings::tool(1))
            .await
            .unwrap();
        assert_eq!(store.fold_profile_users().await.unwrap(), 5);
        assert_eq!(store.fold_profile_users().await.unwrap(), 0, "every row folded once");
        let counts = store.profile_recount().await.unwrap();
        let counts: Vec<(i64, i64)> = counts.iter().map(|(p, _)| (p.id.0, p.user_count)).collect();
        // Profile 1: 2 - 2 + 1 + 1 (the previous release's row); profile 2: 0 + 2 - 1.
        assert_eq!(counts, [(1, 2), (2, 1)]);
        store.close().await;
    }
}
