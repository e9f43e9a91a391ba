//! Wiring: configuration, start-up (migrate, bootstrap), and the server.
//! Tests build an [`Application`] on port 0 and read the bound port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use clap::Parser;
use tokio::net::TcpListener;

use crate::domain::throttle::SignInLimits;
use crate::graphql::documents::Documents;
use crate::graphql::{self, Settings};
use crate::http::AppState;
use crate::http::browser::{self, BrowserSettings};
use crate::http::live;
use crate::observability::{LogFormat, Observability};
use crate::server;
use crate::service::auth::SessionCache;
use crate::service::bootstrap;
use crate::service::live::{Live, LiveSettings};
use crate::store::live::Changes;
use crate::store::{Backend, PoolSettings, Store};

/// Server configuration: flags or environment variables.
#[derive(Debug, Clone, Parser)]
pub struct Config {
    /// Database: `sqlite:FILE` (created on first start) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite:license-gateway.db")]
    pub database_url: String,
    /// Address to listen on.
    #[arg(long, env = "LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Most database connections this process opens (default: 10 on
    /// PostgreSQL; 4 on SQLite, where each connection keeps its own page
    /// cache and thread and one writer works at a time).
    #[arg(long, env = "DB_MAX_CONNECTIONS")]
    pub db_max_connections: Option<u32>,
    /// Username of the vendor operator created on the first start.
    #[arg(long, env = "OPERATOR_USERNAME", default_value = "operator")]
    pub operator_username: String,
    /// A pool counts as near its limit from this usage, in percent of its total.
    #[arg(long, env = "NEAR_LIMIT_PERCENT", default_value_t = 90, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub near_limit_percent: u8,
    /// How long, in milliseconds, a read may trust a session checked in the
    /// database before (0: check on every request). Mutations always check.
    /// Sign-out takes effect at once on the instance that handled it; a
    /// session ended elsewhere may still read here for up to this long.
    #[arg(long, env = "SESSION_CACHE_MS", default_value_t = 2000)]
    pub session_cache_ms: u64,
    /// Milliseconds a new connection has to deliver the head of its first
    /// request; idle and slow-header connections are closed after it.
    /// Default 10,000 (10 s).
    #[arg(long, env = "HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    /// Milliseconds a connection may stay open with no request in flight
    /// after an answer (HTTP/1.1 keep-alive, HTTP/2); the next request's
    /// head must arrive within it. Default 60,000 (60 s).
    #[arg(long, env = "KEEP_ALIVE_TIMEOUT_MS", default_value_t = 60_000)]
    pub keep_alive_timeout_ms: u64,
    /// Milliseconds a request body may take to arrive in full before the
    /// request is answered 408 (`REQUEST_BODY_TIMEOUT`) and its connection
    /// closed. Default 30,000 (30 s).
    #[arg(long, env = "BODY_TIMEOUT_MS", default_value_t = 30_000)]
    pub body_timeout_ms: u64,
    /// Most client connections open at once; one more is answered
    /// `503 Service Unavailable` with `connection: close` and closed. Default:
    /// 10,000, or three quarters of the open-file limit (raised to its hard
    /// limit at start) when that is lower.
    #[arg(long, env = "MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,
    /// Milliseconds shutdown (SIGTERM, ctrl-c) lets the requests in flight
    /// finish once it stops accepting; connections still open then are
    /// closed, and the process exits 0. Default 10,000 (10 s).
    #[arg(long, env = "SHUTDOWN_GRACE_MS", default_value_t = 10_000)]
    pub shutdown_grace_ms: u64,
    /// Create a demo site (and print how to sign in) on start.
    #[arg(long)]
    pub demo: bool,
    /// Log lines as `text` (the default; ANSI colours only when stderr is a
    /// terminal) or `json` (one object a line, for log shippers).
    #[arg(long, env = "LOG_FORMAT", value_enum, ignore_case = true, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Serve Prometheus metrics at `GET /metrics` (default: true; `false`
    /// turns the endpoint and the recording off).
    #[arg(long, env = "METRICS", default_value_t = true, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub metrics: bool,
    /// Also report license usage per site and module (default: off, only
    /// per module: one series per site is many for a large installation).
    #[arg(long, env = "METRICS_PER_SITE")]
    pub metrics_per_site: bool,
    /// Origins whose pages may call the API from a browser, with
    /// credentials: comma-separated exact origins such as
    /// `https://app.example.com,http://localhost:5173` (scheme, host and
    /// port; no path or wildcard). Default: none, so no CORS headers are sent
    /// and browsers keep every other origin's page out.
    #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',', value_parser = browser::parse_origin)]
    pub cors_origins: Vec<HeaderValue>,
    /// Seconds a browser may cache the answer to a CORS preflight
    /// (`Access-Control-Max-Age`). Default 600 (10 min).
    #[arg(long, env = "CORS_MAX_AGE_SECONDS", default_value_t = 600)]
    pub cors_max_age_seconds: u64,
    /// Answer introspection (`__schema`, `__type`) (default: true; `false`
    /// refuses it with `INTROSPECTION_DISABLED`, e.g. in production).
    #[arg(long, env = "INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub introspection: bool,
    /// Serve the GraphiQL playground at `/` and `GET /graphql` (default:
    /// true; `false` answers those paths and its assets 404).
    #[arg(long, env = "PLAYGROUND", default_value_t = true, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub playground: bool,
    /// Answer a request's `x-sql-statements` header with its SQL statement
    /// count in `extensions.sqlStatements` (default: off; for tests and
    /// benchmarks, since it tells any caller how the server works).
    #[arg(long, env = "EXPOSE_SQL_STATEMENTS", value_parser = clap::builder::BoolishValueParser::new())]
    pub expose_sql_statements: bool,
    /// Persisted queries kept for Apollo's automatic persisted queries
    /// (`extensions.persistedQuery`), the least recently used dropped first;
    /// queries over 16 KiB are not kept. Default 1024; 0 answers
    /// `PersistedQueryNotSupported`, so clients stop sending hashes.
    #[arg(long, env = "PERSISTED_QUERIES", default_value_t = crate::graphql::documents::DEFAULT_PERSISTED_QUERIES)]
    pub persisted_queries: usize,
    /// Accept batches: a JSON array of operations in one `POST /graphql`,
    /// run one after another, each held to the same limits and all of them
    /// to one request timeout (default: off; a batch is then answered 400
    /// `BATCHING_DISABLED`).
    #[arg(long, env = "BATCHING", value_parser = clap::builder::BoolishValueParser::new())]
    pub batching: bool,
    /// Most operations in a batch (with `--batching`); more are answered 400
    /// `BATCH_TOO_LARGE`. Default 10.
    #[arg(long, env = "MAX_BATCH_SIZE", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_batch_size: u16,
    #[command(flatten)]
    pub limits: RequestLimits,
    #[command(flatten)]
    pub sign_in: SignInArgs,
    #[command(flatten)]
    pub subscriptions: SubscriptionArgs,
}

/// GraphQL subscriptions over WebSocket (`GET /graphql` with the graphql-ws
/// protocol), and the announcements of committed changes they are fed with
/// (on PostgreSQL `pg_notify` in the committing transaction, heard by every
/// instance; on SQLite within the process).
#[derive(Debug, Clone, clap::Args)]
pub struct SubscriptionArgs {
    /// Serve subscriptions, and announce every committed change of pools,
    /// the audit trail and sessions for them (default: true). `false` serves
    /// none and announces nothing, which saves a PostgreSQL change its
    /// `pg_notify`; every instance on one database should say the same.
    #[arg(long, env = "SUBSCRIPTIONS", default_value_t = true, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub subscriptions: bool,
    /// Most WebSocket connections open at once; one more is answered 503.
    /// They count apart from `--max-connections`. Default 10,000.
    #[arg(long, env = "MAX_WEBSOCKET_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_websocket_connections: u64,
    /// Most subscriptions one connection runs at once; one more is answered
    /// `TOO_MANY_SUBSCRIPTIONS`. Default 32.
    #[arg(long, env = "MAX_SUBSCRIPTIONS_PER_CONNECTION", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_subscriptions_per_connection: u64,
    /// Milliseconds a new WebSocket connection has to send `connection_init`
    /// before it is closed (4408). Default 3,000 (graphql-ws's own default).
    #[arg(long, env = "CONNECTION_INIT_TIMEOUT_MS", default_value_t = 3_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub connection_init_timeout_ms: u64,
    /// Largest WebSocket message a client may send, in bytes; a larger one
    /// closes the connection (1009). Default 65,536.
    #[arg(long, env = "MAX_WEBSOCKET_MESSAGE_BYTES", default_value_t = 65_536,
          value_parser = clap::value_parser!(u64).range(1024..=16_777_216))]
    pub max_websocket_message_bytes: u64,
    /// Milliseconds a message may wait for the client to take it; a client
    /// that does not read is closed (1008). Default 10,000.
    #[arg(long, env = "WEBSOCKET_SEND_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub websocket_send_timeout_ms: u64,
    /// Milliseconds between the server's pings on an open connection, which
    /// keep proxies from closing a quiet one (0: no pings). Default 30,000.
    #[arg(long, env = "WEBSOCKET_PING_INTERVAL_MS", default_value_t = 30_000)]
    pub websocket_ping_interval_ms: u64,
    /// Audit events a subscriber may fall behind before its subscription
    /// ends (`SUBSCRIPTION_LAGGED`). Default 256.
    #[arg(long, env = "MAX_SUBSCRIBER_LAG", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub max_subscriber_lag: u64,
}

impl SubscriptionArgs {
    fn limits(&self) -> live::Limits {
        live::Limits {
            max_connections: self.max_websocket_connections as usize,
            max_subscriptions: self.max_subscriptions_per_connection as usize,
            init_timeout: Duration::from_millis(self.connection_init_timeout_ms),
            max_message_bytes: self.max_websocket_message_bytes as usize,
            send_timeout: Duration::from_millis(self.websocket_send_timeout_ms),
            ping_interval: Duration::from_millis(self.websocket_ping_interval_ms),
        }
    }
}

/// Committed transactions' announcements this process keeps for its hub;
/// past them it reads every subscriber's state again (no client sees this).
const CHANGES_BUFFER: usize = 4096;

/// Sign-in throttling: failed sign-ins are counted per username (without
/// case) and per client address, in the database, so every instance on it
/// enforces the same limits. Past a limit, sign-in is refused without a
/// password check (`SignInThrottled`, `TOO_MANY_ATTEMPTS`) until the lockout
/// ends; a right password clears the username's count.
#[derive(Debug, Clone, clap::Args)]
pub struct SignInArgs {
    /// Failed sign-ins one username may have within the window before it is
    /// locked out.
    #[arg(long, env = "SIGN_IN_MAX_FAILURES", default_value_t = 5, value_parser = clap::value_parser!(i64).range(1..))]
    pub sign_in_max_failures: i64,
    /// Failed sign-ins one client address may have within the window, over
    /// all usernames, before it is locked out (an IPv6 client counts by its /64).
    #[arg(long, env = "SIGN_IN_MAX_FAILURES_PER_ADDRESS", default_value_t = 50,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub sign_in_max_failures_per_address: i64,
    /// Seconds failed sign-ins are counted in, from the first. Default 900 (15 min).
    #[arg(long, env = "SIGN_IN_WINDOW_SECONDS", default_value_t = 900, value_parser = clap::value_parser!(i64).range(1..))]
    pub sign_in_window_seconds: i64,
    /// Seconds of the first lockout; each further lockout of the same
    /// username or address doubles it (until a window passes without one).
    #[arg(long, env = "SIGN_IN_LOCKOUT_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(i64).range(1..))]
    pub sign_in_lockout_seconds: i64,
    /// Seconds of the longest lockout. Default 3600 (1 h).
    #[arg(long, env = "SIGN_IN_MAX_LOCKOUT_SECONDS", default_value_t = 3600,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub sign_in_max_lockout_seconds: i64,
    /// The header a trusted reverse proxy puts the client's address in
    /// (e.g. `X-Forwarded-For`; its last entry counts). Default: none, the
    /// address is the connection's peer. Set it only when every request
    /// comes through that proxy: a client could otherwise name any address.
    #[arg(long, env = "TRUSTED_PROXY_HEADER", value_parser = crate::client::parse_header_name)]
    pub trusted_proxy_header: Option<axum::http::HeaderName>,
}

impl SignInArgs {
    /// The limits these flags set.
    pub fn limits(&self) -> SignInLimits {
        SignInLimits {
            max_failures_per_username: self.sign_in_max_failures,
            max_failures_per_address: self.sign_in_max_failures_per_address,
            window_seconds: self.sign_in_window_seconds,
            lockout_seconds: self.sign_in_lockout_seconds,
            max_lockout_seconds: self.sign_in_max_lockout_seconds.max(self.sign_in_lockout_seconds),
        }
    }
}

/// The limits of a request and of its use of the database. Every one is
/// checked before anything runs, or bounds a wait.
#[derive(Debug, Clone, clap::Args)]
pub struct RequestLimits {
    /// Deepest nesting of fields in an operation.
    #[arg(long, env = "MAX_DEPTH", default_value_t = 16)]
    pub max_depth: usize,
    /// Most complexity of an operation: a field costs 1, a list field its
    /// page size (`first` or `last`, 20 when not given) times what it selects.
    #[arg(long, env = "MAX_COMPLEXITY", default_value_t = 20_000)]
    pub max_complexity: usize,
    /// Most aliased fields in an operation.
    #[arg(long, env = "MAX_ALIASES", default_value_t = 50)]
    pub max_aliases: usize,
    /// Most selections in an operation: fields, fragment spreads and inline
    /// fragments, a fragment counted again wherever it is spread.
    #[arg(long, env = "MAX_SELECTIONS", default_value_t = 1_000)]
    pub max_selections: usize,
    /// Most top-level fields in an operation.
    #[arg(long, env = "MAX_ROOT_FIELDS", default_value_t = 20)]
    pub max_root_fields: usize,
    /// Most audit events the audit trail's `totalCount` counts: past it,
    /// the count answers this number and `totalCountIsExact` false, so a
    /// count costs no more however long the trail grows.
    #[arg(long, env = "AUDIT_COUNT_LIMIT", default_value_t = 10_000, value_parser = clap::value_parser!(i64).range(1..=1_000_000_000))]
    pub audit_count_limit: i64,
    /// How long a GraphQL request may run, in milliseconds, before it is
    /// cancelled (its open transaction rolled back) and answered
    /// `REQUEST_TIMEOUT`.
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_ms: u64,
    /// How long a request may wait for a database connection, in
    /// milliseconds, before it is answered `SERVICE_UNAVAILABLE`.
    #[arg(long, env = "DB_ACQUIRE_TIMEOUT_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub db_acquire_timeout_ms: u64,
    /// How long one statement may run (PostgreSQL's `statement_timeout`), or
    /// wait for SQLite's write lock (`busy_timeout`), in milliseconds.
    #[arg(long, env = "DB_STATEMENT_TIMEOUT_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub db_statement_timeout_ms: u64,
    /// Statements one request may run at a time outside its transaction; it
    /// holds at most this many connections plus one for its transaction.
    #[arg(long, env = "DB_CONNECTIONS_PER_REQUEST", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub db_connections_per_request: u32,
    /// How many times a change whose transaction lost a race (deadlock,
    /// serialization failure, SQLite's write lock busy) is run again before
    /// the client is answered `SERVICE_UNAVAILABLE`.
    #[arg(long, env = "DB_RETRIES", default_value_t = 3)]
    pub db_retries: u32,
    /// How long `/health/ready` waits for the database, in milliseconds.
    #[arg(long, env = "READY_TIMEOUT_MS", default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub ready_timeout_ms: u64,
}

impl RequestLimits {
    fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// How the request pool of a process with `max_connections` is used.
    fn pool(&self, max_connections: u32) -> PoolSettings {
        PoolSettings {
            max_connections,
            acquire_timeout: Duration::from_millis(self.db_acquire_timeout_ms),
            statement_timeout: Some(Duration::from_millis(self.db_statement_timeout_ms)),
            per_request: self.db_connections_per_request,
            retries: self.db_retries,
        }
    }
}

/// A started server: connected, migrated and bound; [`Application::run`] serves.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    limits: server::Limits,
    /// Closes the WebSocket connections at shutdown (when subscriptions are served).
    closer: Option<live::Closer>,
    /// The live-change hub and the change listener, stopped at the end.
    live_tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Where the client's address comes from besides the socket.
    trusted_proxy_header: Option<axum::http::HeaderName>,
    /// The operator's one-time password, when this start created the operator.
    pub operator_password: Option<String>,
}

impl Application {
    /// Connects, migrates, creates the operator (and the demo) when needed,
    /// and binds the listener. Prints one-time credentials to stdout.
    pub async fn build(config: &Config) -> anyhow::Result<Application> {
        let open_file_limit = server::raise_open_file_limit();
        let connections = config.db_max_connections.unwrap_or(match Backend::from_url(&config.database_url) {
            Some(Backend::Sqlite) => 4,
            _ => 10,
        });
        let pool = config.limits.pool(connections);
        let store = Store::connect(&config.database_url, &pool).await?;
        store.migrate().await?;
        // The background fold and readiness checks keep a connection of their own.
        let background = store.reserved(&config.database_url, &PoolSettings { max_connections: 1, ..pool }).await?;
        let operator_password =
            bootstrap::ensure_operator(&store, &config.operator_username).await.map_err(service_err)?;
        if let Some(password) = &operator_password {
            println!(
                "Created the vendor operator account. Sign in with username `{}` and password `{password}` \
                 (shown once; keep it safe).",
                config.operator_username
            );
        }
        if config.demo {
            match bootstrap::ensure_demo(&store).await.map_err(service_err)? {
                Some(c) => println!(
                    "Demo site ready. Sign in with the playground's form, or run:\n  mutation {{ signIn(username: \"{}\", password: \"{}\") {{ ... on SignInSuccess {{ token }} }} }}\n\
                     and send the token as the header Authorization: Bearer <token> (password shown once).",
                    c.admin_username, c.admin_password
                ),
                None => println!("Demo site already exists (its admin password was printed when it was created)."),
            }
        }
        let listener = TcpListener::bind(config.listen).await?;
        let (store, transport, closer, live_tasks) = start_live(store, config).await?;
        let observability = Observability::new(config.metrics, config.metrics_per_site, &store);
        let limits = &config.limits;
        let settings = Settings {
            depth: limits.max_depth,
            complexity: limits.max_complexity,
            max_aliases: limits.max_aliases,
            max_selections: limits.max_selections,
            max_root_fields: limits.max_root_fields,
            near_limit_percent: config.near_limit_percent,
            audit_count_limit: limits.audit_count_limit,
            introspection: config.introspection,
            sign_in: config.sign_in.limits(),
        };
        let state = AppState {
            schema: graphql::schema(settings),
            validated_schema: graphql::validated_schema(settings),
            store,
            sessions: Arc::new(SessionCache::new(Duration::from_millis(config.session_cache_ms))),
            documents: Arc::new(Documents::new(config.persisted_queries)),
            observability,
            settings,
            deadline: limits.request_timeout(),
            body_timeout: Duration::from_millis(config.body_timeout_ms),
            background,
            ready_timeout: Duration::from_millis(limits.ready_timeout_ms),
            browser: BrowserSettings {
                cors_origins: config.cors_origins.clone(),
                cors_max_age: Duration::from_secs(config.cors_max_age_seconds),
                playground: config.playground,
                expose_statements: config.expose_sql_statements,
            },
            max_batch: config.batching.then_some(usize::from(config.max_batch_size)),
            live: transport.map(Arc::new),
        };
        let limits = server_limits(config, open_file_limit);
        let trusted_proxy_header = config.sign_in.trusted_proxy_header.clone();
        Ok(Application { listener, state, limits, closer, live_tasks, trusted_proxy_header, operator_password })
    }

    /// The port the server is bound to.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The database of the server.
    pub fn store(&self) -> Store {
        self.state.store.clone()
    }

    /// Serves until ctrl-c / SIGTERM; then closes the WebSocket connections
    /// (1001, going away) and drains the requests in flight (each up to the
    /// shutdown grace), stops the fold and the live changes, and closes the
    /// database.
    pub async fn run(self) -> anyhow::Result<()> {
        let addr = self.listener.local_addr()?;
        // Registered before anyone is told the server listens: a SIGTERM that
        // comes before the first poll of the shutdown future would otherwise
        // kill the process with the signal's default action.
        let shutdown = shutdown_signal()?;
        tracing::info!(%addr, limits = ?self.limits, "listening");
        println!("license-gateway listening on http://{addr}/ (playground at /, API at /graphql)");
        let (store, background) = (self.state.store.clone(), self.state.background.clone());
        let folding = tokio::spawn(fold_profile_users(background.clone()));
        let app = crate::http::service(self.state, self.trusted_proxy_header);
        let closer = self.closer;
        let stop = async {
            shutdown.await;
            if let Some(closer) = &closer {
                closer.close();
            }
        };
        server::serve(self.listener, app, self.limits, stop).await;
        if let Some(closer) = &closer {
            closer.closed(self.limits.shutdown_grace).await;
        }
        for task in self.live_tasks.into_iter().chain([folding]) {
            task.abort();
            let _ = task.await;
        }
        store.close().await;
        background.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Starts what subscriptions need when `config` serves them: `store`
/// announcing its commits, the change listener (PostgreSQL), the hub and
/// the WebSocket transport.
async fn start_live(
    store: Store,
    config: &Config,
) -> anyhow::Result<(Store, Option<live::Transport>, Option<live::Closer>, Vec<tokio::task::JoinHandle<()>>)> {
    let args = &config.subscriptions;
    if !args.subscriptions {
        return Ok((store, None, None, Vec::new()));
    }
    let changes = Changes::new(CHANGES_BUFFER);
    let store = store.announcing(changes.clone());
    let mut tasks = Vec::new();
    if store.backend() == Backend::Postgres {
        tasks.push(crate::store::live::listen(&config.database_url, changes.clone()).await?);
    }
    let settings = LiveSettings {
        max_lag: args.max_subscriber_lag as usize,
        may_change_sessions: crate::graphql::documents::may_change_sessions,
    };
    let (hub, pump) = Live::start(store.clone(), &changes, settings);
    tasks.push(pump);
    let (transport, closer) = live::Transport::new(hub, args.limits());
    Ok((store, Some(transport), Some(closer), tasks))
}

/// The connection limits `config` asks for.
fn server_limits(config: &Config, open_file_limit: Option<u64>) -> server::Limits {
    server::Limits {
        header_timeout: Duration::from_millis(config.header_timeout_ms),
        keep_alive_timeout: Duration::from_millis(config.keep_alive_timeout_ms),
        max_connections: config
            .max_connections
            .map_or_else(|| server::default_max_connections(open_file_limit), |n| n as usize),
        shutdown_grace: Duration::from_millis(config.shutdown_grace_ms),
    }
}

/// How often an instance folds the recorded changes of profiles' user counts.
const FOLD_EVERY: Duration = Duration::from_millis(100);

/// Folds the changes of profiles' user counts every [`FOLD_EVERY`], so the
/// rows that reads add up stay few (a tenth of a second's worth of changes).
/// Counts are right whether or not it runs; a failed fold is retried at the
/// next tick.
async fn fold_profile_users(store: Store) {
    let mut every = tokio::time::interval(FOLD_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = store.fold_profile_users().await {
            tracing::warn!(error = %e, "folding profiles' user counts failed; retrying at the next tick");
        }
    }
}

fn service_err(e: crate::service::ServiceError) -> anyhow::Error {
    anyhow::anyhow!("start-up failed: {e:?}")
}

/// Registers for ctrl-c (SIGINT) and SIGTERM now, and returns what
/// completes when either arrives.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut interrupt, mut terminate) = (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?);
    Ok(async move {
        tokio::select! { _ = interrupt.recv() => {}, _ = terminate.recv() => {} }
    })
}

/// Completes on ctrl-c.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
