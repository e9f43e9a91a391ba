//! Test harness: a fresh database per test on each backend, a real server on
//! a free port, and a small GraphQL client. Every rule test goes through the
//! public API over real HTTP.
#![allow(dead_code)]

pub mod ws;

use std::io::Write;
use std::sync::Once;

use clap::Parser;
use license_gateway::app::{Application, Config};
use license_gateway::store::Store;
use serde_json::{Value, json};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs a test body on both backends: `sqlite` always, `postgres` when
/// `TEST_POSTGRES_URL` is set (CI sets it; see `.ci/run`).
#[macro_export]
macro_rules! both_backends {
    ($(#[$meta:meta])* async fn $name:ident($db:ident: Db) $body:block) => {
        mod $name {
            use super::*;
            async fn run($db: Db) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(Db::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::common::postgres_url().is_some() {
                    run(Db::Postgres).await
                }
            }
        }
    };
}

/// The server URL of the Postgres the suite may use, if any. Says once, on
/// the terminal, when there is none.
pub fn postgres_url() -> Option<String> {
    static NOTICE: Once = Once::new();
    let url = std::env::var("TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty());
    if url.is_none() {
        NOTICE.call_once(|| {
            // Written straight to stderr so the test harness does not capture it.
            let _ = writeln!(
                std::io::stderr(),
                "NOTE: TEST_POSTGRES_URL is not set: the Postgres half of the suite did not run (SQLite only)."
            );
        });
    }
    url
}

/// Server logs in tests only when `TEST_LOG` is set (e.g. `TEST_LOG=debug`).
fn init_logs() {
    static LOGS: Once = Once::new();
    LOGS.call_once(|| {
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        }
    });
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}_{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{}{}", N.fetch_add(1, Ordering::Relaxed), nanos % 100_000)
}

/// A fresh, empty database URL for one test.
pub async fn fresh_database(db: Db) -> String {
    match db {
        Db::Sqlite => {
            let dir = std::env::temp_dir().join("license-gateway-tests");
            std::fs::create_dir_all(&dir).unwrap();
            format!("sqlite:{}", dir.join(format!("{}.db", unique("t"))).display())
        }
        Db::Postgres => {
            let server = postgres_url().expect("TEST_POSTGRES_URL");
            let name = unique("lg_test");
            drop_stale_databases(&server).await;
            let admin = Store::connect(&server, &license_gateway::store::PoolSettings::tool(1))
                .await
                .expect("connect to TEST_POSTGRES_URL");
            admin.execute_raw(&format!("CREATE DATABASE {name}")).await.expect("create test database");
            admin.close().await;
            let base = server.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(server.clone());
            format!("{base}/{name}")
        }
    }
}

/// Drops, once per test process, the databases earlier test processes left
/// behind (their names carry the process id; a process that is gone no
/// longer needs its databases), so repeated runs do not pile them up.
async fn drop_stale_databases(server: &str) {
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| async {
        let Ok(pool) = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(server).await else { return };
        let names: Vec<String> =
            sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'lg\\_test\\_%'")
                .fetch_all(&pool)
                .await
                .unwrap_or_default();
        for name in names {
            let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
            let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
            let safe = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !alive && safe {
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&pool)
                    .await;
            }
        }
        pool.close().await;
    })
    .await;
}

/// The server's default: reads may trust a session checked this recently.
pub const SESSION_CACHE_MS: u64 = 2000;

/// A running server on a free port with its own fresh database.
pub struct TestApp {
    pub url: String,
    pub database_url: String,
    pub store: Store,
    pub operator_password: String,
    pub client: reqwest::Client,
}

impl TestApp {
    pub async fn spawn(db: Db) -> TestApp {
        TestApp::spawn_with(db, SESSION_CACHE_MS).await
    }

    /// [`TestApp::spawn`] with reads trusting a checked session for `session_cache_ms`.
    pub async fn spawn_with(db: Db, session_cache_ms: u64) -> TestApp {
        init_logs();
        let database_url = fresh_database(db).await;
        let (app, password) = TestApp::start(&database_url, session_cache_ms).await;
        TestApp { operator_password: password.expect("fresh database creates the operator"), ..app }
    }

    /// A second server on the database of `self` (another gateway instance).
    pub async fn another_instance(&self, session_cache_ms: u64) -> TestApp {
        let (app, _) = TestApp::start(&self.database_url, session_cache_ms).await;
        TestApp { operator_password: self.operator_password.clone(), ..app }
    }

    async fn start(database_url: &str, session_cache_ms: u64) -> (TestApp, Option<String>) {
        TestApp::start_with(database_url, session_cache_ms, &[]).await
    }

    /// A server on a fresh database, started with the server's own flags
    /// `extra` besides the test defaults (e.g. `["--max-aliases", "5"]`).
    pub async fn spawn_flags(db: Db, extra: &[&str]) -> TestApp {
        init_logs();
        let database_url = fresh_database(db).await;
        let (app, password) = TestApp::start_with(&database_url, SESSION_CACHE_MS, extra).await;
        TestApp { operator_password: password.expect("fresh database creates the operator"), ..app }
    }

    /// A server on the database at `database_url` (already created, maybe
    /// reached through something the test controls), with flags `extra`.
    /// Its operator password is known only if this start created the operator.
    pub async fn spawn_on(database_url: &str, extra: &[&str]) -> TestApp {
        init_logs();
        let (app, password) = TestApp::start_with(database_url, SESSION_CACHE_MS, extra).await;
        TestApp { operator_password: password.unwrap_or_default(), ..app }
    }

    /// A second server on the database of `self`, with flags `extra`.
    pub async fn another_instance_flags(&self, extra: &[&str]) -> TestApp {
        let (app, _) = TestApp::start_with(&self.database_url, SESSION_CACHE_MS, extra).await;
        TestApp { operator_password: self.operator_password.clone(), ..app }
    }

    /// The configuration a test server starts with: what the binary parses
    /// from its flags, so every setting has the binary's default.
    pub fn config(database_url: &str, session_cache_ms: u64, extra: &[&str]) -> Config {
        let session_cache_ms = session_cache_ms.to_string();
        let mut args = vec![
            "license-gateway",
            "--database-url",
            database_url,
            "--listen",
            "127.0.0.1:0",
            "--db-max-connections",
            "8",
            "--session-cache-ms",
            &session_cache_ms,
            // Many tests count the statements a request runs (`gql_counted`).
            "--expose-sql-statements",
        ];
        args.extend_from_slice(extra);
        Config::try_parse_from(args).expect("test server flags")
    }

    /// A server on a fresh database, started with the test configuration as
    /// `configure` changes it (for a setting the test flags cannot undo,
    /// such as `--expose-sql-statements`).
    pub async fn spawn_configured(db: Db, configure: impl FnOnce(&mut Config)) -> TestApp {
        init_logs();
        let database_url = fresh_database(db).await;
        let mut config = TestApp::config(&database_url, SESSION_CACHE_MS, &[]);
        configure(&mut config);
        let (app, password) = TestApp::start_config(&config).await;
        TestApp { operator_password: password.expect("fresh database creates the operator"), ..app }
    }

    async fn start_with(database_url: &str, session_cache_ms: u64, extra: &[&str]) -> (TestApp, Option<String>) {
        TestApp::start_config(&TestApp::config(database_url, session_cache_ms, extra)).await
    }

    async fn start_config(config: &Config) -> (TestApp, Option<String>) {
        let database_url = config.database_url.as_str();
        let app = Application::build(config).await.expect("server starts");
        let url = format!("http://127.0.0.1:{}", app.port());
        let store = app.store();
        let operator_password = app.operator_password.clone();
        tokio::spawn(app.run());
        let client = reqwest::Client::new();
        (
            TestApp { url, database_url: database_url.to_string(), store, operator_password: String::new(), client },
            operator_password,
        )
    }

    /// Runs a GraphQL request; returns the HTTP status and the whole body.
    pub async fn gql_status(&self, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        let mut req =
            self.client.post(format!("{}/graphql", self.url)).json(&json!({ "query": query, "variables": variables }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let response = req.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json body"))
    }

    /// GETs `path`; returns the HTTP status and the body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self.client.get(format!("{}{path}", self.url)).send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// Runs a GraphQL request; returns the whole response body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.gql_counted(token, query, variables).await.0
    }

    /// Like [`TestApp::gql`], also returning the SQL statements the request ran.
    pub async fn gql_counted(&self, token: Option<&str>, query: &str, variables: Value) -> (Value, u64) {
        let mut req = self
            .client
            .post(format!("{}/graphql", self.url))
            .header("x-sql-statements", "1")
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let body: Value = req.send().await.expect("request").json().await.expect("json body");
        let statements = body["extensions"]["sqlStatements"].as_u64().unwrap_or(0);
        (body, statements)
    }

    /// Runs a request that must succeed; returns `data`.
    pub async fn ok(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = self.gql(token, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    pub async fn sign_in(&self, username: &str, password: &str) -> String {
        let data = self
            .ok(
                None,
                "mutation($u: String!, $p: String!) { signIn(username: $u, password: $p) { __typename ... on SignInSuccess { token } ... on SignInRefused { code message } } }",
                json!({ "u": username, "p": password }),
            )
            .await;
        data["signIn"]["token"].as_str().unwrap_or_else(|| panic!("sign-in refused: {data}")).to_string()
    }

    pub async fn operator(&self) -> String {
        self.sign_in("operator", &self.operator_password).await
    }

    /// Creates a site with the given (module, total) pools; returns its
    /// handle with the administrator's token.
    pub async fn site(&self, name: &str, pools: &[(&str, i64)], self_service: bool) -> Site {
        let op = self.operator().await;
        let admin = format!("{}-admin", name.to_lowercase().replace(' ', "-"));
        let pools: Vec<Value> = pools.iter().map(|(m, t)| json!({ "module": m, "total": t })).collect();
        let data = self
            .ok(
                Some(&op),
                "mutation($i: CreateSiteInput!) { createSite(input: $i) { __typename ... on CreateSiteSuccess { site { id } administrator { id person { id } profile { id } } } } }",
                json!({ "i": { "name": name, "agreementName": format!("{name} agreement"), "selfService": self_service,
                        "pools": pools, "administrator": { "name": format!("{name} Admin"), "username": admin, "password": PASSWORD } } }),
            )
            .await;
        let created = &data["createSite"];
        assert_eq!(created["__typename"], "CreateSiteSuccess", "{data}");
        let token = self.sign_in(&admin, PASSWORD).await;
        Site {
            id: created["site"]["id"].as_str().unwrap().to_string(),
            admin_token: token,
            admin_login: created["administrator"]["id"].as_str().unwrap().to_string(),
            admin_person: created["administrator"]["person"]["id"].as_str().unwrap().to_string(),
            parking_profile: created["administrator"]["profile"]["id"].as_str().unwrap().to_string(),
            operator_token: op,
        }
    }
}

pub const PASSWORD: &str = "correct horse battery";

/// A site made for a test, seen from its administrator.
pub struct Site {
    pub id: String,
    pub admin_token: String,
    pub admin_login: String,
    pub admin_person: String,
    /// The module-less profile every site starts with (R8).
    pub parking_profile: String,
    pub operator_token: String,
}

impl Site {
    pub async fn profile(&self, app: &TestApp, name: &str, modules: &[&str]) -> String {
        let data = app
            .ok(
                Some(&self.admin_token),
                "mutation($i: CreateProfileInput!) { createProfile(input: $i) { __typename ... on CreateProfileSuccess { profile { id } } } }",
                json!({ "i": { "name": name, "modules": modules } }),
            )
            .await;
        data["createProfile"]["profile"]["id"].as_str().unwrap_or_else(|| panic!("{data}")).to_string()
    }

    pub async fn person(&self, app: &TestApp, name: &str) -> String {
        let data = app
            .ok(
                Some(&self.admin_token),
                "mutation($i: CreatePersonInput!) { createPerson(input: $i) { ... on CreatePersonSuccess { person { id } } } }",
                json!({ "i": { "name": name } }),
            )
            .await;
        data["createPerson"]["person"]["id"].as_str().unwrap().to_string()
    }

    /// Tries to create a login; returns the `createLogin` result.
    pub async fn try_login(
        &self,
        app: &TestApp,
        person: &str,
        username: &str,
        profile: &str,
        valid_until: Option<&str>,
    ) -> Value {
        let data = app
            .ok(
                Some(&self.admin_token),
                "mutation($i: CreateLoginInput!) { createLogin(input: $i) { __typename
                    ... on CreateLoginSuccess { user { id } licensePools { module { code } total used available } }
                    ... on LicenseLimitExceeded { code message remedy shortages { module { code } needed available shortfall } }
                    ... on Refusal { code message } } }",
                json!({ "i": { "personId": person, "username": username, "password": PASSWORD, "profileId": profile, "validUntil": valid_until } }),
            )
            .await;
        data["createLogin"].clone()
    }

    /// Sends `createLogin` with a raw validUntil; returns the whole body.
    pub async fn try_login_raw(
        &self,
        app: &TestApp,
        person: &str,
        username: &str,
        profile: &str,
        valid_until: &str,
    ) -> Value {
        app.gql(
            Some(&self.admin_token),
            "mutation($i: CreateLoginInput!) { createLogin(input: $i) { __typename } }",
            json!({ "i": { "personId": person, "username": username, "password": PASSWORD, "profileId": profile, "validUntil": valid_until } }),
        )
        .await
    }

    /// A person with a login on `profile`; returns the user id.
    pub async fn user(&self, app: &TestApp, name: &str, profile: &str) -> String {
        let person = self.person(app, name).await;
        let username = name.to_lowercase().replace(' ', ".");
        let r = self.try_login(app, &person, &username, profile, None).await;
        assert_eq!(r["__typename"], "CreateLoginSuccess", "{r}");
        r["user"]["id"].as_str().unwrap().to_string()
    }

    /// The pools as (code, total, used, available).
    pub async fn pools(&self, app: &TestApp) -> Vec<(String, i64, i64, i64)> {
        let data = app
            .ok(Some(&self.admin_token), "{ licensePools { module { code } total used available } }", json!({}))
            .await;
        data["licensePools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["module"]["code"].as_str().unwrap().to_string(),
                    p["total"].as_i64().unwrap(),
                    p["used"].as_i64().unwrap(),
                    p["available"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    /// (total, used, available) of one module's pool.
    pub async fn pool(&self, app: &TestApp, code: &str) -> (i64, i64, i64) {
        let pools = self.pools(app).await;
        let p = pools.iter().find(|p| p.0 == code).unwrap_or_else(|| panic!("no {code} pool in {pools:?}"));
        (p.1, p.2, p.3)
    }
}

/// Asserts that every counter equals a fresh recount and no pool is over-allocated.
pub async fn assert_counters_match(store: &Store) {
    let v = license_gateway::service::bootstrap::verify(store).await.expect("verify");
    assert_eq!(v.problems, 0, "counter drift:\n{}", v.report.join("\n"));
}

/// The `extensions.code` of the first error.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {body}"))
}

/// A TCP proxy between a gateway and PostgreSQL that the test cuts (every
/// connection closed, new ones closed at once) and restores.
pub struct Proxy {
    /// The database's URL through the proxy.
    pub url: String,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    /// A proxy to the PostgreSQL database at `direct` (`postgres://user@host:port/name`).
    pub async fn start(direct: &str) -> Proxy {
        use std::sync::atomic::Ordering;
        let (head, name) = direct.rsplit_once('/').unwrap();
        let (userinfo, hostport) = head.rsplit_once('@').unwrap();
        let upstream = hostport.to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (up2, conns2) = (up.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns2.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy { url: format!("{userinfo}@127.0.0.1:{port}/{name}"), up, connections }
    }

    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for c in self.connections.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
