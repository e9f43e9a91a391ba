//! The benchmark dataset (`license-gateway generate`): one site named "Bench"
//! loaded with set-based SQL, so 500,000 people take seconds, not minutes.
//! A tool beside the store, never on a request's path: it runs its bulk
//! statements on a store transaction's connection and calls the store for
//! what a request would also do (the username registry, the audit trail,
//! reading profiles back).
//!
//! The data follow the seed of the optional peer comparison (PostGraphile's
//! `seed.sql` in the peers' harness, see `bench/README.md`), so the same N
//! gives the same usage on every server we compare with. Person
//! `i` (1..=N) of the site:
//! - is deleted when `i % 19 = 1` (about 5%), and so is their login (R6, R7);
//! - has a login when `i % 5 <> 0` (80%), with login id `base + i - i / 5`,
//!   username `md5(i)[..8] + "." + i` (unique, lower-case, ordered unlike the
//!   ids), `validUntil` null when `i % 3 = 0`, else 2026-01-01 + `i % 730` days,
//!   and profile number `1 + (i / 5) % 20`;
//! - profile number `g` (1..=20) has the modules of `g % 4`: 0 none, 1 CASE,
//!   2 DOCUMENT, 3 CASE and DOCUMENT.
//!
//! Ids are the highest existing id plus the number above, so on an empty
//! database they equal the peers' (people 1..N, logins 1..0.8N, profiles
//! 1..20). The counters (`profiles.user_count`, `license_pools.used`) are set
//! from a recount in the same transaction, and each pool total is its usage
//! plus the requested headroom.
//!
//! PostgreSQL numbers its rows with `generate_series` and hashes with `md5()`;
//! SQLite has neither, so there the numbers and the md5 prefixes come from a
//! temporary table filled in batches of bound values. Where the two dialects
//! differ, both statements stand side by side below, chosen by [`Backend`].

use md5::{Digest, Md5};
use sqlx::{Any, QueryBuilder, Row};

use crate::domain::*;
use crate::store::{AuditEvent, Backend, Store, StoreResult};

/// The name of the generated site; generating again replaces it.
pub const BENCH_SITE: &str = "Bench";
/// Username of the generated site's administrator.
pub const BENCH_ADMIN: &str = "bench-admin";
/// Profiles of the generated site: five of each module combination.
pub const BENCH_PROFILES: i64 = 20;

/// What to generate.
pub struct DatasetSpec<'a> {
    /// The site's name ([`BENCH_SITE`]); a site of this name is replaced.
    pub site_name: &'a SiteName,
    /// Number of people (N).
    pub people: i64,
    /// Free licenses per pool after loading: total = usage + headroom.
    pub headroom: i64,
    /// The one password hash every generated login shares.
    pub user_password_hash: &'a str,
    /// The site administrator (on a profile without modules, R8).
    pub admin_username: &'a Username,
    pub admin_password_hash: &'a str,
    pub now: i64,
}

/// What was generated: the ids a load test needs.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub site: SiteId,
    pub people: i64,
    pub deleted_people: i64,
    /// First and last id of the generated logins (live and deleted).
    pub login_ids: (LoginId, LoginId),
    /// Generated logins that are live (their person too), without the administrator.
    pub live_logins: Vec<LoginId>,
    pub admin_login: LoginId,
    /// Profiles in number order, each with its module codes.
    pub profiles: Vec<(ProfileId, String, Vec<String>)>,
}

/// Rows per statement when filling SQLite's number table, 2 bound values each.
/// SQLite looks parameters up by name, linearly, while preparing, so a
/// statement with many thousands of them is slow; a few hundred are not.
const SQLITE_BATCH: i64 = 500;

/// Picks the statement of this backend.
fn dialect(backend: Backend, postgres: &'static str, sqlite: &'static str) -> &'static str {
    match backend {
        Backend::Postgres => postgres,
        Backend::Sqlite => sqlite,
    }
}

// ---- replacing an earlier Bench site ----------------------------------------

/// Deleting people checks `logins (site_id, person_id)` row by row, which no
/// permanent index covers (the application never deletes people: R7 keeps
/// them as tombstones). This index, dropped again in the same transaction,
/// keeps replacing a large site linear instead of quadratic.
const REPLACE_INDEX: &str = "CREATE INDEX dataset_replace_logins_person ON logins (site_id, person_id)";
const REPLACE_INDEX_DROP: &str = "DROP INDEX dataset_replace_logins_person";
const REPLACE: [&str; 16] = [
    "DELETE FROM usernames WHERE username_key IN \
     (SELECT username_key FROM logins WHERE site_id = $1 AND deleted_at IS NULL)",
    "DELETE FROM sessions WHERE login_id IN (SELECT id FROM logins WHERE site_id = $1)",
    "DELETE FROM license_order_lines WHERE order_id IN (SELECT id FROM license_orders WHERE site_id = $1)",
    "DELETE FROM license_orders WHERE site_id = $1",
    "DELETE FROM change_request_lines WHERE request_id IN (SELECT id FROM change_requests WHERE site_id = $1)",
    "DELETE FROM change_requests WHERE site_id = $1",
    "DELETE FROM responsibilities WHERE site_id = $1",
    "DELETE FROM logins WHERE site_id = $1",
    "DELETE FROM people WHERE site_id = $1",
    "DELETE FROM profile_modules WHERE site_id = $1",
    "DELETE FROM profile_user_deltas WHERE site_id = $1",
    "DELETE FROM profiles WHERE site_id = $1",
    "DELETE FROM license_pools WHERE site_id = $1",
    "DELETE FROM agreements WHERE site_id = $1",
    "DELETE FROM audit_events WHERE site_id = $1",
    "DELETE FROM sites WHERE id = $1",
];

// ---- the site -----------------------------------------------------------------

const SITE: &str = "INSERT INTO sites (name, name_key, created_at) VALUES ($1, $2, $3) RETURNING id";
const AGREEMENT: &str =
    "INSERT INTO agreements (site_id, name, self_service, created_at) VALUES ($1, 'Bench agreement', 1, $2)";
/// A pool for every module; usage and totals are set at the end.
const POOLS: &str = "INSERT INTO license_pools (site_id, module_id, total, used) SELECT $1, id, $2, 0 FROM modules";
const ID_BASES: &str = "SELECT (SELECT COALESCE(MAX(id), 0) FROM people) AS people, \
     (SELECT COALESCE(MAX(id), 0) FROM logins) AS logins, \
     (SELECT COALESCE(MAX(id), 0) FROM profiles) AS profiles";

/// $1 profile id base, $2 site, $3 now. Names sort in number order. They
/// are ASCII, whose [`fold`] is SQL's `lower()` on both databases, so the
/// keys can be made here.
const PROFILES_PG: &str = "INSERT INTO profiles (id, site_id, name, name_key, user_count, created_at) \
     SELECT $1 + g, $2, n, lower(n), 0, $3 FROM (SELECT g, 'Profile ' || lpad(g::text, 2, '0') || ' (' || \
     (CASE g % 4 WHEN 0 THEN 'none' WHEN 1 THEN 'CASE' WHEN 2 THEN 'DOCUMENT' ELSE 'CASE+DOCUMENT' END) || ')' AS n \
     FROM generate_series(1, 20) AS s(g)) named";
const PROFILES_SQLITE: &str = "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < 20) \
     INSERT INTO profiles (id, site_id, name, name_key, user_count, created_at) \
     SELECT $1 + g, $2, n, lower(n), 0, $3 FROM (SELECT g, 'Profile ' || printf('%02d', g) || ' (' || \
     (CASE g % 4 WHEN 0 THEN 'none' WHEN 1 THEN 'CASE' WHEN 2 THEN 'DOCUMENT' ELSE 'CASE+DOCUMENT' END) || ')' AS n \
     FROM s) named";

/// $1 profile id base, $2 site. Profile number = id - base.
const PROFILE_MODULES: &str = "INSERT INTO profile_modules (site_id, profile_id, module_id) \
     SELECT p.site_id, p.id, m.id FROM profiles p JOIN modules m \
     ON (m.code = 'CASE' AND (p.id - $1) % 4 IN (1, 3)) OR (m.code = 'DOCUMENT' AND (p.id - $1) % 4 IN (2, 3)) \
     WHERE p.site_id = $2";

// ---- people and logins ----------------------------------------------------------

/// SQLite's stand-in for `generate_series` and `md5()`: i and md5(i)[..8].
const SQLITE_NUMBERS: &str = "CREATE TEMP TABLE dataset_numbers (i INTEGER PRIMARY KEY, tag TEXT NOT NULL)";
const SQLITE_NUMBERS_DROP: &str = "DROP TABLE temp.dataset_numbers";

/// $1 person id base, $2 site, $3 now, $4 N. The names are ASCII, so their
/// folded copy ([`fold`], what search compares) is their `lower()`.
const PEOPLE_PG: &str = "INSERT INTO people (id, site_id, name, email, created_at, deleted_at, name_folded) \
     SELECT $1 + i, $2, n, NULL, $3, CASE WHEN i % 19 = 1 THEN $3 END, lower(n) \
     FROM (SELECT i, 'Person ' || lpad(i::text, 7, '0') AS n FROM generate_series(1, $4) AS s(i)) named";
const PEOPLE_SQLITE: &str = "INSERT INTO people (id, site_id, name, email, created_at, deleted_at, name_folded) \
     SELECT $1 + i, $2, n, NULL, $3, CASE WHEN i % 19 = 1 THEN $3 END, lower(n) \
     FROM (SELECT i, 'Person ' || printf('%07d', i) AS n FROM dataset_numbers WHERE i <= $4) named";

/// $1 login id base, $2 site, $3 person id base, $4 password hash,
/// $5 profile id base, $6 now, $7 N. A deleted person's login is deleted
/// with them and occupies nothing.
const LOGINS_PG: &str = "INSERT INTO logins (id, site_id, person_id, username, username_key, password_hash, \
     valid_until, profile_id, is_admin, occupying, created_at, deleted_at, deleted_with_person) \
     SELECT $1 + i - i / 5, $2, $3 + i, u, u, $4, \
     CASE WHEN i % 3 = 0 THEN NULL ELSE to_char(DATE '2026-01-01' + (i % 730)::int, 'YYYY-MM-DD') END, \
     $5 + 1 + (i / 5) % 20, 0, CASE WHEN i % 19 = 1 THEN 0 ELSE 1 END, $6, CASE WHEN i % 19 = 1 THEN $6 END, \
     CASE WHEN i % 19 = 1 THEN 1 ELSE 0 END \
     FROM (SELECT i, substr(md5(i::text), 1, 8) || '.' || i AS u FROM generate_series(1, $7) AS s(i) \
     WHERE i % 5 <> 0) numbered";
const LOGINS_SQLITE: &str = "INSERT INTO logins (id, site_id, person_id, username, username_key, password_hash, \
     valid_until, profile_id, is_admin, occupying, created_at, deleted_at, deleted_with_person) \
     SELECT $1 + i - i / 5, $2, $3 + i, u, u, $4, \
     CASE WHEN i % 3 = 0 THEN NULL ELSE date('2026-01-01', '+' || (i % 730) || ' days') END, \
     $5 + 1 + (i / 5) % 20, 0, CASE WHEN i % 19 = 1 THEN 0 ELSE 1 END, $6, CASE WHEN i % 19 = 1 THEN $6 END, \
     CASE WHEN i % 19 = 1 THEN 1 ELSE 0 END \
     FROM (SELECT i, tag || '.' || i AS u FROM dataset_numbers WHERE i <= $7 AND i % 5 <> 0) numbered";

/// Live logins claim their usernames installation-wide (`docs/domain.md`).
/// In key order: appending to the index is cheaper than inserting at random places.
const USERNAMES: &str = "INSERT INTO usernames (username_key, kind) \
     SELECT username_key, 'LOGIN' FROM logins WHERE site_id = $1 AND deleted_at IS NULL ORDER BY username_key";

/// $1 site, $2 now.
const ADMIN_PERSON: &str = "INSERT INTO people (id, site_id, name, email, created_at, name_folded) \
     SELECT COALESCE(MAX(id), 0) + 1, $1, 'Bench Administrator', 'bench-admin@example.org', $2, \
     'bench administrator' FROM people RETURNING id";
/// $1 site, $2 person, $3 username, $4 key, $5 hash, $6 profile, $7 now.
const ADMIN_LOGIN: &str = "INSERT INTO logins (id, site_id, person_id, username, username_key, password_hash, \
     valid_until, profile_id, is_admin, occupying, created_at) \
     SELECT COALESCE(MAX(id), 0) + 1, $1, $2, $3, $4, $5, NULL, $6, 1, 1, $7 FROM logins RETURNING id";

// ---- counters ----------------------------------------------------------------------

/// user_count = logins that occupy licenses (live login of a live person).
const USER_COUNTS: &str = "UPDATE profiles SET user_count = (SELECT COUNT(*) FROM logins l \
     WHERE l.profile_id = profiles.id AND l.site_id = profiles.site_id AND l.occupying = 1) WHERE site_id = $1";
/// used = the users of every profile with the module (R2); total = headroom + used.
const POOL_USAGE: &str = "UPDATE license_pools SET \
     used = (SELECT COALESCE(SUM(p.user_count), 0) FROM profiles p JOIN profile_modules pm ON pm.profile_id = p.id \
             WHERE p.site_id = license_pools.site_id AND pm.module_id = license_pools.module_id), \
     total = total + (SELECT COALESCE(SUM(p.user_count), 0) FROM profiles p \
             JOIN profile_modules pm ON pm.profile_id = p.id \
             WHERE p.site_id = license_pools.site_id AND pm.module_id = license_pools.module_id), \
     version = version + 1 \
     WHERE site_id = $1";
/// Explicit ids leave PostgreSQL's identity sequences behind; SQLite picks max + 1 itself.
const SEQUENCES_PG: [&str; 3] = [
    "SELECT setval(pg_get_serial_sequence('people', 'id'), (SELECT MAX(id) FROM people))",
    "SELECT setval(pg_get_serial_sequence('logins', 'id'), (SELECT MAX(id) FROM logins))",
    "SELECT setval(pg_get_serial_sequence('profiles', 'id'), (SELECT MAX(id) FROM profiles))",
];
/// Planner statistics for the new rows (VACUUM also sets the visibility map
/// that index-only scans need; it cannot run inside a transaction).
const ANALYZE_PG: &str = "VACUUM (ANALYZE) people, logins, profiles, profile_modules, license_pools, usernames";
const ANALYZE_SQLITE: &str = "ANALYZE";

// ---- read-back ------------------------------------------------------------------------

const COUNTS: &str = "SELECT COUNT(*) AS people, \
     COALESCE(SUM(CASE WHEN deleted_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS deleted \
     FROM people WHERE site_id = $1 AND id > $2 AND id <= $3";
const LIVE_LOGINS: &str =
    "SELECT id FROM logins WHERE site_id = $1 AND id > $2 AND id <= $3 AND deleted_at IS NULL ORDER BY id";

/// The first 8 hex digits of md5(i), as PostgreSQL's `substr(md5(i::text), 1, 8)`.
fn md5_tag(i: i64) -> String {
    let digest = Md5::digest(i.to_string().as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// Creates the site `spec.site_name` with `spec.people` people (replacing
/// an earlier one with everything in it) in one transaction, then refreshes
/// the planner statistics. `None` (nothing written) when the administrator's
/// username is taken on another site.
pub async fn generate(store: &Store, spec: &DatasetSpec<'_>) -> StoreResult<Option<Dataset>> {
    let backend = store.backend();
    let n = spec.people;
    let mut tx = store.begin().await?;

    let old_site = sqlx::query("SELECT id FROM sites WHERE name_key = $1").bind(spec.site_name.key());
    if let Some(old) = old_site.fetch_optional(tx.connection()).await? {
        let old: i64 = old.try_get("id")?;
        sqlx::query(REPLACE_INDEX).execute(tx.connection()).await?;
        for sql in REPLACE {
            sqlx::query(sql).bind(old).execute(tx.connection()).await?;
        }
        sqlx::query(REPLACE_INDEX_DROP).execute(tx.connection()).await?;
    }

    let site_row = sqlx::query(SITE).bind(spec.site_name.as_str().to_string()).bind(spec.site_name.key());
    let site: i64 = site_row.bind(spec.now).fetch_one(tx.connection()).await?.try_get("id")?;
    sqlx::query(AGREEMENT).bind(site).bind(spec.now).execute(tx.connection()).await?;
    sqlx::query(POOLS).bind(site).bind(spec.headroom).execute(tx.connection()).await?;
    let bases = sqlx::query(ID_BASES).fetch_one(tx.connection()).await?;
    let person_base: i64 = bases.try_get("people")?;
    let login_base: i64 = bases.try_get("logins")?;
    let profile_base: i64 = bases.try_get("profiles")?;

    let profiles = dialect(backend, PROFILES_PG, PROFILES_SQLITE);
    sqlx::query(profiles).bind(profile_base).bind(site).bind(spec.now).execute(tx.connection()).await?;
    sqlx::query(PROFILE_MODULES).bind(profile_base).bind(site).execute(tx.connection()).await?;

    if backend == Backend::Sqlite {
        sqlx::query(SQLITE_NUMBERS).execute(tx.connection()).await?;
        let mut from = 1;
        while from <= n {
            let to = (from + SQLITE_BATCH - 1).min(n);
            // SQLite only, so sqlx's builder and its `?` placeholders serve.
            let mut insert = QueryBuilder::<Any>::new("INSERT INTO dataset_numbers (i, tag) ");
            insert.push_values(from..=to, |mut row, i| {
                row.push_bind(i).push_bind(md5_tag(i));
            });
            insert.build().execute(tx.connection()).await?;
            from = to + 1;
        }
    }
    let people = dialect(backend, PEOPLE_PG, PEOPLE_SQLITE);
    sqlx::query(people).bind(person_base).bind(site).bind(spec.now).bind(n).execute(tx.connection()).await?;
    let logins = dialect(backend, LOGINS_PG, LOGINS_SQLITE);
    sqlx::query(logins)
        .bind(login_base)
        .bind(site)
        .bind(person_base)
        .bind(spec.user_password_hash.to_string())
        .bind(profile_base)
        .bind(spec.now)
        .bind(n)
        .execute(tx.connection())
        .await?;
    if backend == Backend::Sqlite {
        sqlx::query(SQLITE_NUMBERS_DROP).execute(tx.connection()).await?;
    }
    sqlx::query(USERNAMES).bind(site).execute(tx.connection()).await?;

    // The administrator, on the first profile without modules (number 4).
    let admin_key = spec.admin_username.key();
    if !tx.reserve_username(&admin_key, "LOGIN").await? {
        return Ok(None);
    }
    let admin_person: i64 =
        sqlx::query(ADMIN_PERSON).bind(site).bind(spec.now).fetch_one(tx.connection()).await?.try_get("id")?;
    let admin_login: i64 = sqlx::query(ADMIN_LOGIN)
        .bind(site)
        .bind(admin_person)
        .bind(spec.admin_username.as_str().to_string())
        .bind(admin_key)
        .bind(spec.admin_password_hash.to_string())
        .bind(profile_base + 4)
        .bind(spec.now)
        .fetch_one(tx.connection())
        .await?
        .try_get("id")?;

    sqlx::query(USER_COUNTS).bind(site).execute(tx.connection()).await?;
    sqlx::query(POOL_USAGE).bind(site).execute(tx.connection()).await?;
    if backend == Backend::Postgres {
        for sql in SEQUENCES_PG {
            sqlx::query(sql).execute(tx.connection()).await?;
        }
    }
    let actor = Actor { kind: "SYSTEM", id: 0, name: "license-gateway generate".into(), person: None };
    let event = AuditEvent {
        site: Some(SiteId(site)),
        actor: &actor,
        action: "generateDataset",
        target: &format!("site:{site}"),
        target_person: None,
        outcome: "ACCEPTED",
        rule: None,
        code: None,
        message: format!("{n} people, headroom {}", spec.headroom),
        pools: &[],
    };
    tx.insert_audit(event, spec.now).await?;

    let counts = sqlx::query(COUNTS).bind(site).bind(person_base).bind(person_base + n);
    let counts = counts.fetch_one(tx.connection()).await?;
    let last_login = login_base + n - n / 5;
    let live = sqlx::query(LIVE_LOGINS).bind(site).bind(login_base).bind(last_login);
    let live = live.fetch_all(tx.connection()).await?;
    let live_logins = live.iter().map(|r| r.try_get("id").map(LoginId)).collect::<StoreResult<Vec<_>>>()?;
    tx.commit().await?;

    store.execute_raw(dialect(backend, ANALYZE_PG, ANALYZE_SQLITE)).await?;

    let ids: Vec<ProfileId> = (1..=BENCH_PROFILES).map(|g| ProfileId(profile_base + g)).collect();
    let names = store.profiles_by_ids(&ids).await?;
    let mut modules = store.modules_of_profiles(&ids).await?;
    let profiles = ids
        .iter()
        .map(|id| {
            let name = names.iter().find(|p| p.id == *id).map(|p| p.name.clone()).unwrap_or_default();
            let codes = modules.remove(id).unwrap_or_default().into_iter().map(|m| m.code).collect();
            (*id, name, codes)
        })
        .collect();
    Ok(Some(Dataset {
        site: SiteId(site),
        people: counts.try_get("people")?,
        deleted_people: counts.try_get("deleted")?,
        login_ids: (LoginId(login_base + 1), LoginId(last_login)),
        live_logins,
        admin_login: LoginId(admin_login),
        profiles,
    }))
}
