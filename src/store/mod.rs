//! Storage: the only place with SQL. One code path serves SQLite and
//! PostgreSQL through sqlx's `Any` driver; the few real dialect differences
//! sit in [`Backend`]. Every statement goes through a counting helper so that
//! tests and benchmarks can report SQL statements per request.

/// The folded copies of names that search compares, and the name keys.
mod folding;
mod lifecycle;
/// What committed, announced to live subscribers (`pg_notify`, or this process's channel).
pub mod live;
/// Keyset paging in both directions, of one list or of one list per parent, and counts.
mod paging;
mod reads;
mod sql;
/// The sign-in throttle's rows: failed sign-ins per username and address.
mod throttle;
/// The pool's connections and license usage, for metrics.
mod usage;
mod writes;

pub use folding::Refolded;
pub use lifecycle::*;
pub use paging::{Rows, Slice};
pub use reads::*;
pub use usage::*;
pub use writes::*;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

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
    /// statements touch them. Both then set the savepoint a refusal rolls
    /// back to ([`Tx::undo_change`]), in the same round trip: the accepted
    /// path pays no extra trip for it, and commit keeps what followed it.
    fn begin_write(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE; SAVEPOINT change",
            Backend::Postgres => "BEGIN; SAVEPOINT change",
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

/// How a process uses its database connections: how many, how long a
/// request may wait for one, how long a statement may run, and how many of
/// them one request may hold.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// Longest wait for a connection (a new one included) before the
    /// request is answered that the database is unavailable.
    pub acquire_timeout: Duration,
    /// Longest a statement may run (PostgreSQL's `statement_timeout`) or
    /// wait for SQLite's write lock (`busy_timeout`); `None`: no bound
    /// (tools such as `generate`, whose bulk load is made of long statements).
    pub statement_timeout: Option<Duration>,
    /// Statements one request may run at a time outside its transaction;
    /// a request holds at most this many connections plus one for its
    /// transaction, so no request can take the pool from the others.
    pub per_request: u32,
    /// How many times a use case whose transaction lost a race runs again.
    pub retries: u32,
}

impl PoolSettings {
    /// What a command-line tool uses: `max_connections`, no statement bound.
    pub fn tool(max_connections: u32) -> Self {
        PoolSettings {
            max_connections,
            acquire_timeout: Duration::from_secs(30),
            statement_timeout: None,
            per_request: max_connections,
            retries: 3,
        }
    }
}

/// What a database failure means for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The database cannot be reached, or no connection came within the
    /// acquire timeout.
    Unreachable,
    /// The transaction lost a race it may win when run again: a deadlock,
    /// a serialization failure, SQLite's write lock still busy.
    Transient,
    /// A statement ran past the statement timeout and was cancelled.
    TimedOut,
    /// Anything else: a bug or a broken invariant.
    Other,
}

/// What `err` means for the client (either backend).
pub fn failure(err: &StoreError) -> Failure {
    use sqlx::Error as E;
    match err {
        E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed | E::Protocol(_) => {
            Failure::Unreachable
        }
        E::Database(db) => database_failure(db.code().as_deref().unwrap_or("")),
        _ => Failure::Other,
    }
}

/// What a database's error code means: PostgreSQL's SQLSTATE, or SQLite's
/// (extended) result code as a number.
fn database_failure(code: &str) -> Failure {
    match code {
        // PostgreSQL: serialization failure, deadlock detected.
        "40001" | "40P01" => Failure::Transient,
        // PostgreSQL: statement_timeout.
        "57014" => Failure::TimedOut,
        // PostgreSQL: connection exceptions, shutting down, cannot connect now, too many connections.
        c if c.starts_with("08") => Failure::Unreachable,
        "57P01" | "57P02" | "57P03" | "53300" => Failure::Unreachable,
        // SQLite: SQLITE_BUSY and SQLITE_LOCKED, with their extended codes.
        c => match c.parse::<i32>() {
            Ok(n) if matches!(n & 0xff, 5 | 6) => Failure::Transient,
            _ => Failure::Other,
        },
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
    /// This request's share of the pool ([`Store::counting`]); `None` on the
    /// process's own handle.
    share: Option<Arc<Share>>,
    /// Statements one request may run at a time outside its transaction.
    per_request: u32,
    /// How many times a use case whose transaction lost a race runs again.
    retries: u32,
    /// Where committed changes are announced ([`Store::announcing`]); `None`:
    /// live subscriptions are off and transactions announce nothing.
    live: Option<live::Changes>,
}

/// The connections one request may hold at a time: `reads` statements
/// outside a transaction, and one transaction. A statement holds its turn
/// only while it runs, and a transaction its own turn until it ends, so
/// neither waits for the other: a request cannot deadlock on its share.
/// (A request never opens a second transaction while it holds one; the
/// SQLite write gate would deadlock on that already.)
struct Share {
    reads: Semaphore,
    transaction: Arc<Semaphore>,
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
    pub async fn connect(url: &str, settings: &PoolSettings) -> anyhow::Result<Store> {
        let backend = Backend::from_url(url)
            .ok_or_else(|| anyhow::anyhow!("DATABASE_URL must start with sqlite: or postgres://, got `{url}`"))?;
        let pool = connect_pool(url, backend, settings).await?;
        let write_gate = (backend == Backend::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(())));
        Ok(Store {
            pool,
            backend,
            statements: Arc::new(AtomicU64::new(0)),
            write_gate,
            guard: None,
            share: None,
            per_request: settings.per_request.max(1),
            retries: settings.retries,
            live: None,
        })
    }

    /// This handle, whose transactions announce what they commit to live
    /// subscribers (see [`live`]): on PostgreSQL with `pg_notify`, on SQLite
    /// on `changes`.
    pub fn announcing(self, changes: live::Changes) -> Store {
        Store { live: Some(changes), ..self }
    }

    /// Where committed changes are announced in this process, if anywhere.
    pub fn changes(&self) -> Option<&live::Changes> {
        self.live.as_ref()
    }

    /// Another pool on the same database for work that must not queue
    /// behind requests (the background fold, readiness checks); SQLite
    /// writers of both still take turns through one write gate.
    pub async fn reserved(&self, url: &str, settings: &PoolSettings) -> anyhow::Result<Store> {
        let pool = connect_pool(url, self.backend, settings).await?;
        Ok(Store { pool, statements: Arc::new(AtomicU64::new(0)), share: None, ..self.clone() })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the pending migrations of this backend, then fills the
    /// folded names SQL cannot compute ([`Store::refold`]).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        self.backend.migrator().run(&self.pool).await?;
        let refolded = self.refold().await?;
        if refolded != Refolded::default() {
            tracing::info!(?refolded, "brought folded names up to date");
        }
        Ok(())
    }

    /// A handle on the same pool for one request: its own statement counter,
    /// and its share of the pool ([`PoolSettings::per_request`]).
    pub fn counting(&self) -> Store {
        let share =
            Share { reads: Semaphore::new(self.per_request as usize), transaction: Arc::new(Semaphore::new(1)) };
        Store { statements: Arc::new(AtomicU64::new(0)), share: Some(Arc::new(share)), ..self.clone() }
    }

    /// How many times a use case whose transaction lost a race runs again
    /// (see the `retrying!` macro).
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Waits for this request's turn to run a statement outside a transaction.
    async fn read_turn(&self) -> Option<SemaphorePermit<'_>> {
        self.share.as_ref()?.reads.acquire().await.ok()
    }

    /// Waits for this request's turn to hold a transaction.
    async fn transaction_turn(&self) -> Option<OwnedSemaphorePermit> {
        self.share.as_ref()?.transaction.clone().acquire_owned().await.ok()
    }

    /// Checks that the database answers and that its schema is this
    /// build's: every migration this build knows is applied. Answers why not.
    pub async fn readiness(&self) -> Result<(), &'static str> {
        let latest = self.backend.migrator().iter().map(|m| m.version).max().unwrap_or(0);
        let sql = "SELECT MAX(version) AS v FROM _sqlx_migrations WHERE success";
        let row = self.fetch_optional(sqlx::query(sql)).await.map_err(|e| match failure(&e) {
            Failure::Unreachable | Failure::TimedOut => "database unreachable",
            _ => "migrations not applied",
        })?;
        let applied = row.and_then(|r| sqlx::Row::try_get::<Option<i64>, _>(&r, "v").ok().flatten()).unwrap_or(0);
        if applied >= latest { Ok(()) } else { Err("migrations not applied") }
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
        let turn = self.transaction_turn().await;
        let gate = match &self.write_gate {
            Some(gate) => Some(gate.clone().lock_owned().await),
            None => None,
        };
        self.tick();
        let begun = self.pool.begin_with(self.backend.begin_write()).await;
        let inner = begun.inspect_err(|e| forget_idle_if_unreachable(&self.pool, e))?;
        Ok(Tx {
            inner,
            pool: self.pool.clone(),
            backend: self.backend,
            statements: self.statements.clone(),
            journal: Vec::new(),
            announced: Vec::new(),
            notified: 0,
            live: self.live.clone(),
            guard: self.guard.clone(),
            _gate: gate,
            _turn: turn,
        })
    }

    fn tick(&self) {
        self.statements.fetch_add(1, Ordering::Relaxed);
    }

    async fn fetch_all(&self, q: AnyQuery<'_>) -> StoreResult<Vec<AnyRow>> {
        self.tick();
        let _turn = self.read_turn().await;
        q.fetch_all(&self.pool).await.inspect_err(|e| forget_idle_if_unreachable(&self.pool, e))
    }

    async fn fetch_optional(&self, q: AnyQuery<'_>) -> StoreResult<Option<AnyRow>> {
        self.tick();
        let _turn = self.read_turn().await;
        q.fetch_optional(&self.pool).await.inspect_err(|e| forget_idle_if_unreachable(&self.pool, e))
    }
}

/// One write transaction. Dropping it without [`Tx::commit`] rolls back.
pub struct Tx {
    inner: Transaction<'static, Any>,
    /// The pool it came from, to forget the idle connections of when the database is gone.
    pool: AnyPool,
    backend: Backend,
    statements: Arc<AtomicU64>,
    /// Every pool change applied in this transaction, for audit and previews.
    journal: Vec<crate::domain::PoolChange>,
    /// What it changed that live subscribers may want, announced at commit.
    announced: Vec<live::Announcement>,
    /// How many of `announced` a statement has already passed to `pg_notify`.
    notified: usize,
    /// Where to announce them; `None`: nowhere.
    live: Option<live::Changes>,
    /// The session its audit event must still belong to ([`Store::guarded`]).
    guard: Option<Arc<SessionGuard>>,
    /// Held until the transaction ends (SQLite; see `Store::write_gate`).
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// The request's transaction turn ([`Share`]), held until it ends.
    _turn: Option<OwnedSemaphorePermit>,
}

impl Tx {
    /// The pool changes applied so far, in order.
    pub fn journal(&self) -> &[crate::domain::PoolChange] {
        &self.journal
    }

    /// The transaction's connection, for a tool that brings SQL of its own
    /// (the benchmark dataset, [`crate::dataset`]); its statements are not
    /// counted. Use cases call the methods named for what they do.
    pub fn connection(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.inner
    }

    /// Notes what a refused change would have done to a pool (never applied).
    pub fn note(&mut self, change: crate::domain::PoolChange) {
        self.journal.push(change);
    }

    /// Undoes every write of the transaction so far (on PostgreSQL also
    /// releasing the row locks taken since it began), keeping it open, on
    /// SQLite with its write lock: a refused change then writes its audit event in the very
    /// transaction that decided it, and commits that alone. A crash before
    /// the commit loses the refusal and its event together; a refusal is
    /// answered only after both are on disk.
    pub async fn undo_change(&mut self) -> StoreResult<()> {
        self.execute(sqlx::query("ROLLBACK TO SAVEPOINT change")).await?;
        // Undone, so not announced (PostgreSQL drops the notifications of
        // the rolled-back part too).
        self.announced.clear();
        self.notified = 0;
        Ok(())
    }

    /// Notes `announcement` for live subscribers, once, when they are on.
    fn announce(&mut self, announcement: live::Announcement) {
        if self.live.is_some() && !self.announced.contains(&announcement) {
            self.announced.push(announcement);
        }
    }

    /// Ends the transaction without writing anything (previews).
    pub async fn rollback(self) -> StoreResult<()> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        self.inner.rollback().await.inspect_err(|e| forget_idle_if_unreachable(&self.pool, e))
    }

    /// Commits, and announces what committed: on PostgreSQL what no statement
    /// has passed to `pg_notify` yet goes in one more before the commit; on
    /// SQLite everything is published in this process after it.
    pub async fn commit(mut self) -> StoreResult<()> {
        if self.backend == Backend::Postgres && self.notified < self.announced.len() {
            let payload = live::payload(&self.announced[self.notified..]);
            let sql = "SELECT CAST(pg_notify($1, $2) AS TEXT) AS notified";
            self.fetch_optional(sqlx::query(sql).bind(live::CHANNEL).bind(payload)).await?;
        }
        self.statements.fetch_add(1, Ordering::Relaxed);
        self.inner.commit().await.inspect_err(|e| forget_idle_if_unreachable(&self.pool, e))?;
        if let (Backend::Sqlite, Some(changes)) = (self.backend, &self.live)
            && !self.announced.is_empty()
        {
            changes.publish(std::mem::take(&mut self.announced).into());
        }
        Ok(())
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
        q.fetch_all(&mut *self.inner).await.inspect_err(|e| forget_idle_if_unreachable(&self.pool, e))
    }

    async fn fetch_optional(&mut self, q: AnyQuery<'_>) -> StoreResult<Option<AnyRow>> {
        self.tick();
        q.fetch_optional(&mut *self.inner).await.inspect_err(|e| forget_idle_if_unreachable(&self.pool, e))
    }

    async fn execute(&mut self, q: AnyQuery<'_>) -> StoreResult<u64> {
        self.tick();
        let done = q.execute(&mut *self.inner).await.inspect_err(|e| forget_idle_if_unreachable(&self.pool, e))?;
        Ok(done.rows_affected())
    }
}

impl Store {
    /// Runs one statement that takes no parameters (test and tool set-up,
    /// e.g. `CREATE DATABASE`). Never called with user input.
    pub async fn execute_raw(&self, sql: &str) -> StoreResult<()> {
        self.tick();
        let _turn = self.read_turn().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(&self.pool).await?;
        Ok(())
    }
}

/// When `err` says the database cannot be reached, closes every idle
/// connection of `pool`: they were opened before and are likely dead too.
/// The pool opens new ones as needed, so once the database is back the next
/// request succeeds, instead of one request failing per dead connection.
/// (A connection that fails its statement is closed by sqlx itself.)
fn forget_idle_if_unreachable(pool: &AnyPool, err: &StoreError) {
    if failure(err) != Failure::Unreachable {
        return;
    }
    let mut closed = 0;
    while let Some(mut idle) = pool.try_acquire() {
        idle.close_on_drop();
        closed += 1;
    }
    if closed > 0 {
        tracing::warn!(closed, "the database is unreachable: closed the idle connections");
    }
}

/// Opens a pool on `url` with `settings`: on SQLite in WAL mode, synced on
/// every commit, waiting
/// for the write lock up to the statement timeout; on PostgreSQL with the
/// statement timeout set on every connection.
async fn connect_pool(url: &str, backend: Backend, settings: &PoolSettings) -> anyhow::Result<AnyPool> {
    static DRIVERS: std::sync::Once = std::sync::Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);
    let url = match backend {
        Backend::Sqlite if !url.contains("mode=") => {
            format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
        }
        _ => url.to_string(),
    };
    // Validate early so a typo in the URL gets a clear message.
    sqlx::any::AnyConnectOptions::from_str(&url)?;
    let millis = settings.statement_timeout.map(|t| t.as_millis().max(1));
    let pool = AnyPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        // No ping round trip on every acquire: a broken connection fails
        // its statement, the pool drops it, and the request gets an error.
        .test_before_acquire(false)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                let setup = match backend {
                    Backend::Sqlite => vec![
                        "PRAGMA journal_mode = WAL".to_string(),
                        // Every commit reaches the disk before it is acknowledged, so an
                        // acknowledged change survives power loss, not only a killed process.
                        "PRAGMA synchronous = FULL".to_string(),
                        format!("PRAGMA busy_timeout = {}", millis.unwrap_or(30_000)),
                        "PRAGMA foreign_keys = ON".to_string(),
                    ],
                    Backend::Postgres => millis.map(|ms| format!("SET statement_timeout = {ms}")).into_iter().collect(),
                };
                for statement in setup {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await?;
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_commits_reach_the_disk_before_they_are_acknowledged() {
        let file = std::env::temp_dir().join(format!("lg-sync-{}.db", std::process::id()));
        let store = Store::connect(&format!("sqlite:{}", file.display()), &PoolSettings::tool(1)).await.unwrap();
        let row = sqlx::query("PRAGMA synchronous").fetch_one(&store.pool).await.unwrap();
        // 2 is FULL: the WAL is synced at every commit (NORMAL, 1, syncs only at checkpoints).
        assert_eq!(sqlx::Row::try_get::<i64, _>(&row, 0).unwrap(), 2);
        let row = sqlx::query("PRAGMA journal_mode").fetch_one(&store.pool).await.unwrap();
        assert_eq!(sqlx::Row::try_get::<String, _>(&row, 0).unwrap(), "wal");
        store.close().await;
        let _ = std::fs::remove_file(&file);
    }

    #[test]
    fn database_codes_tell_what_a_failure_means() {
        assert_eq!(database_failure("40P01"), Failure::Transient);
        assert_eq!(database_failure("40001"), Failure::Transient);
        assert_eq!(database_failure("57014"), Failure::TimedOut);
        assert_eq!(database_failure("08006"), Failure::Unreachable);
        assert_eq!(database_failure("57P01"), Failure::Unreachable);
        // SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED.
        assert_eq!(database_failure("5"), Failure::Transient);
        assert_eq!(database_failure("517"), Failure::Transient);
        assert_eq!(database_failure("6"), Failure::Transient);
        // Unique and check violations are not retried.
        assert_eq!(database_failure("23505"), Failure::Other);
        assert_eq!(database_failure("2067"), Failure::Other);
        assert_eq!(database_failure("275"), Failure::Other);
    }
}
