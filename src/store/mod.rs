//! Storage: the only place with SQL. One code path serves SQLite and
//! PostgreSQL through sqlx's `Any` driver; the few real dialect differences
//! sit in [`Backend`]. Every statement goes through a counting helper so that
//! tests and benchmarks can report SQL statements per request.

/// The benchmark dataset of `license-gateway generate` (set-based bulk load).
mod dataset;
mod lifecycle;
mod reads;
mod sql;
/// The pool's connections and license usage, for metrics.
mod usage;
mod writes;

pub use dataset::*;
pub use lifecycle::*;
pub use reads::*;
pub use usage::*;
pub use writes::*;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyPool, Transaction};

/// A database failure. Its text goes to the log, never to a client.
pub type StoreError = sqlx::Error;
pub type StoreResult<T> = Result<T, StoreError>;

type AnyQuery<'q> = Query<'q, Any, AnyArguments>;

/// The two supported databases and where they really differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    /// How a write transaction starts. SQLite takes the write lock up front
    /// (`IMMEDIATE`), so writers queue on `busy_timeout` instead of failing
    /// with SQLITE_BUSY when a reader upgrades; PostgreSQL locks rows as the
    /// statements touch them.
    fn begin_write(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// What makes a `SELECT` lock the rows it reads until the transaction
    /// ends. SQLite needs nothing: a write transaction (`BEGIN IMMEDIATE`)
    /// already keeps every other writer out.
    fn row_lock(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    /// What makes a `SELECT` take a shared lock on the rows it reads until
    /// the transaction ends: no other transaction may delete them or lock
    /// them [`Backend::row_lock`] meanwhile, but any number may share them.
    /// (`FOR KEY SHARE`: an `UPDATE` that leaves the key alone does not wait
    /// for it; whoever must wait for the sharers locks `FOR UPDATE` first.)
    fn shared_row_lock(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR KEY SHARE",
        }
    }

    fn migrator(self) -> sqlx::migrate::Migrator {
        match self {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        }
    }
}

/// Connection pool plus the statement counter of one request (or of the
/// process, for the shared handle).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    statements: Arc<AtomicU64>,
    /// SQLite only: this process's writers queue here, in order, instead of
    /// in SQLite's busy handler, which sleeps and retries. Correctness does
    /// not rest on it (`BEGIN IMMEDIATE` serialises writers across processes);
    /// it only keeps waiting writers from sleeping past a free lock.
    write_gate: Option<Arc<tokio::sync::Mutex<()>>>,
    /// The session every audit event written through this handle must still
    /// belong to ([`Store::guarded`]).
    guard: Option<Arc<SessionGuard>>,
}

/// A site login's session as a request found it in this instance's session
/// cache, not checked in the database for this request. An audit event
/// written through a handle carrying it ([`Store::guarded`]) is inserted
/// only if, in that same statement, the session is still unrevoked and
/// unexpired and its login and person are still as the principal says
/// (not deleted, valid today, same administrator flag, username and name).
/// Only a use case whose every write goes with its audit event may run on
/// such a handle (today `changeLoginProfile`): a change commits its event in
/// its own transaction, and a refusal writes nothing but its event, so
/// nothing is written under a session that ended or changed.
#[derive(Debug, Clone)]
pub struct SessionGuard {
    pub token_hash: String,
    pub login_id: crate::domain::LoginId,
    pub site_id: crate::domain::SiteId,
    pub username: String,
    pub name: String,
    pub is_admin: bool,
    pub today: crate::domain::Date,
}

impl Store {
    /// Connects to `url` (`sqlite:...` or `postgres://...`). A SQLite file is
    /// created when missing.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Store> {
        static DRIVERS: std::sync::Once = std::sync::Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = Backend::from_url(url)
            .ok_or_else(|| anyhow::anyhow!("DATABASE_URL must start with sqlite: or postgres://, got `{url}`"))?;
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_string(),
        };
        // Validate early so a typo in the URL gets a clear message.
        sqlx::any::AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            // No ping round trip on every acquire: a broken connection fails
            // its statement, the pool drops it, and the request gets an error.
            .test_before_acquire(false)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = NORMAL",
                            "PRAGMA busy_timeout = 30000",
                            "PRAGMA foreign_keys = ON",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let write_gate = (backend == Backend::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(())));
        Ok(Store { pool, backend, statements: Arc::new(AtomicU64::new(0)), write_gate, guard: None })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the pending migrations of this backend.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        self.backend.migrator().run(&self.pool).await?;
        Ok(())
    }

    /// A handle on the same pool with its own statement counter (one per request).
    pub fn counting(&self) -> Store {
        Store { statements: Arc::new(AtomicU64::new(0)), ..self.clone() }
    }

    /// A handle on the same pool and counter whose audit events are written
    /// only while `guard`'s session holds (see [`SessionGuard`]).
    pub fn guarded(&self, guard: SessionGuard) -> Store {
        Store { guard: Some(Arc::new(guard)), ..self.clone() }
    }

    /// SQL statements run through this handle (and its transactions) so far.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a write transaction: all effects of one mutation or none.
    pub async fn begin(&self) -> StoreResult<Tx> {
        let gate = match &self.write_gate {
            Some(gate) => Some(gate.clone().lock_owned().await),
            None => None,
        };
        self.tick();
        let inner = self.pool.begin_with(self.backend.begin_write()).await?;
        Ok(Tx {
            inner,
            backend: self.backend,
            statements: self.statements.clone(),
            journal: Vec::new(),
            guard: self.guard.clone(),
            _gate: gate,
        })
    }

    fn tick(&self) {
        self.statements.fetch_add(1, Ordering::Relaxed);
    }

    async fn fetch_all(&self, q: AnyQuery<'_>) -> StoreResult<Vec<AnyRow>> {
        self.tick();
        q.fetch_all(&self.pool).await
    }

    async fn fetch_optional(&self, q: AnyQuery<'_>) -> StoreResult<Option<AnyRow>> {
        self.tick();
        q.fetch_optional(&self.pool).await
    }
}

/// One write transaction. Dropping it without [`Tx::commit`] rolls back.
pub struct Tx {
    inner: Transaction<'static, Any>,
    backend: Backend,
    statements: Arc<AtomicU64>,
    /// Every pool change applied in this transaction, for audit and previews.
    journal: Vec<crate::domain::PoolChange>,
    /// The session its audit event must still belong to ([`Store::guarded`]).
    guard: Option<Arc<SessionGuard>>,
    /// Held until the transaction ends (SQLite; see `Store::write_gate`).
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Tx {
    /// The pool changes applied so far, in order.
    pub fn journal(&self) -> &[crate::domain::PoolChange] {
        &self.journal
    }

    /// Notes what a refused change would have done to a pool (never applied).
    pub fn note(&mut self, change: crate::domain::PoolChange) {
        self.journal.push(change);
    }

    /// Ends the transaction without writing anything (previews).
    pub async fn rollback(self) -> StoreResult<()> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        self.inner.rollback().await
    }

    pub async fn commit(self) -> StoreResult<()> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        self.inner.commit().await
    }

    fn tick(&self) {
        self.statements.fetch_add(1, Ordering::Relaxed);
    }

    /// Appended to a `SELECT`, locks the rows it reads until the transaction ends.
    fn row_lock(&self) -> &'static str {
        self.backend.row_lock()
    }

    /// Appended to a `SELECT`, takes a shared lock on the rows it reads.
    fn shared_row_lock(&self) -> &'static str {
        self.backend.shared_row_lock()
    }

    async fn fetch_all(&mut self, q: AnyQuery<'_>) -> StoreResult<Vec<AnyRow>> {
        self.tick();
        q.fetch_all(&mut *self.inner).await
    }

    async fn fetch_optional(&mut self, q: AnyQuery<'_>) -> StoreResult<Option<AnyRow>> {
        self.tick();
        q.fetch_optional(&mut *self.inner).await
    }

    async fn execute(&mut self, q: AnyQuery<'_>) -> StoreResult<u64> {
        self.tick();
        Ok(q.execute(&mut *self.inner).await?.rows_affected())
    }
}

/// Whether `err` is a unique-constraint violation (either backend).
pub fn is_unique_violation(err: &StoreError) -> bool {
    err.as_database_error().is_some_and(|e| e.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

impl Store {
    /// Runs one statement that takes no parameters (test and tool set-up,
    /// e.g. `CREATE DATABASE`). Never called with user input.
    pub async fn execute_raw(&self, sql: &str) -> StoreResult<()> {
        self.tick();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(&self.pool).await?;
        Ok(())
    }
}
