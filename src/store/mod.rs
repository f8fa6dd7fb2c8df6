//! Repository functions over the SeaORM entities, one module per aggregate.
//!
//! Every function takes `&impl ConnectionTrait`, so the same function runs on the pool or
//! inside a transaction: the actor that makes a change composes the writes it needs (state,
//! ledger, events) into one transaction (architecture §1). GraphQL reads call these directly.
//! Nothing here talks to verusd.

pub mod actions;
pub mod audit;
pub mod chain;
pub mod events;
pub mod identities;
pub mod lease;
pub mod ledger;
pub mod payments;
pub mod settings;
pub mod stakes;
pub mod statements;
pub mod stats;
pub mod subscribers;
pub mod utxos;
pub mod webhooks;

use std::time::Duration;

use migration::MigratorTrait;
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};

use crate::config::DatabaseConfig;

/// Values bound in one `IN (…)` list: far below every backend's limit on bound variables.
pub(crate) const IN_SLICE: usize = 500;

/// A database failure or a stored value that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or could not be reached.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    /// A stored value is not what the schema promises (hand-edited or corrupt rows).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// This instance lost the leader lease: another instance follows the chain now; the
    /// transaction was rolled back.
    #[error("{0}")]
    LeaseLost(String),
    /// A row changed since it was read (another instance moved it); nothing was written.
    #[error("{0}")]
    Conflict(String),
}

/// Result of a store function.
pub type StoreResult<T> = Result<T, StoreError>;

/// Connects to the database named by the configuration (SQLite, PostgreSQL or MySQL).
/// On a SQLite file its connections leave WAL checkpoints to [`checkpoint_wal`].
pub async fn connect(config: &DatabaseConfig) -> Result<DatabaseConnection, DbErr> {
    connect_with(
        config.url.expose(),
        config.max_connections,
        config.log_statements,
        true,
        None,
    )
    .await
}

/// A second pool on the same database, for the API's reads (the chain actors keep the
/// first to themselves). On a SQLite file its connections leave WAL checkpoints to
/// [`checkpoint_wal`], and run where `placement` says: at a priority lowered by
/// `http.worker_nice` steps, and off the actors' CPU when `affinity.actors_cpu` keeps one.
///
/// Each SQLite connection is a thread of its own, started by the thread that opens the
/// connection and with that thread's priority and CPUs. The pool's first connections used to be
/// opened by the start-up thread, at the actors' priority, and a flood of API reads then
/// took the CPU from the blocks as much as the actors had. They are all opened at once on a
/// thread whose priority is lowered first ([`api_pool_thread`]). They never expire; one
/// that closes after an error is opened again by the task that needs it, most often an HTTP
/// worker's (lowered too).
///
/// On a SQLite file the API's statements also yield to a live block ([`BlockYield`]).
pub async fn connect_api(
    config: &DatabaseConfig,
    placement: crate::priority::ApiPlacement,
    yield_to: BlockYield,
) -> Result<DatabaseConnection, DbErr> {
    let url = config.url.expose().to_owned();
    if config.url.backend() != "sqlite"
        || in_memory(&url)
        || placement == crate::priority::ApiPlacement::default()
    {
        return connect_with(
            &url,
            config.max_connections,
            config.log_statements,
            true,
            Some(&yield_to),
        )
        .await;
    }
    let (max, log) = (config.max_connections, config.log_statements);
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("api-db".into())
        .spawn(move || api_pool_thread(url, max, log, &placement, yield_to, tx))
        .map_err(|e| DbErr::Custom(format!("cannot start the API's database thread: {e}")))?;
    rx.await
        .map_err(|_| DbErr::Custom("the API's database thread ended".into()))?
}

/// The thread of the API's SQLite pool: lowers its priority, opens every connection of the
/// pool (each connection's thread inherits the priority), hands the pool over and ends.
fn api_pool_thread(
    url: String,
    max: u32,
    log_statements: bool,
    placement: &crate::priority::ApiPlacement,
    yield_to: BlockYield,
    tx: tokio::sync::oneshot::Sender<Result<DatabaseConnection, DbErr>>,
) {
    if let Err(e) = placement.enter() {
        log::warn!(
            "cannot lower the priority of the API's database connections or move them off the actors' CPU: {e}"
        );
    }
    let opened = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DbErr::Custom(format!("cannot start the API's database thread: {e}")))
        .and_then(|runtime| {
            runtime.block_on(async move {
                let mut options = options(&url, max, log_statements);
                options
                    .min_connections(max)
                    .map_sqlx_sqlite_opts(|o| o.pragma("wal_autocheckpoint", "0"))
                    .map_sqlx_sqlite_pool_opts(move |o| {
                        yield_to.on_pool(o.max_lifetime(None).idle_timeout(None))
                    });
                let db = Database::connect(options).await?;
                db.execute_unprepared("PRAGMA journal_mode = WAL").await?;
                // The pool opens its other connections in the background, on this thread
                // (`size` counts those still opening: wait until all are open and idle).
                let pool = db.get_sqlite_connection_pool();
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                while pool.num_idle() < max as usize && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Ok(db)
            })
        });
    let _ = tx.send(opened);
}

/// A pool for the chain actors' block transactions: what they write is derived from the
/// chain, so a commit lost to a power cut or a kernel crash is made again from the chain
/// when the pool restarts (it resumes at its actors' cursors). On a SQLite file these
/// connections commit with `synchronous = NORMAL`: the write-ahead log is not flushed to the
/// disk at every commit but at the next commit of a durable connection (a payment, a
/// subscriber's or an admin's change, the lease renewal every few seconds) or checkpoint
/// ([`checkpoint_wal`], every half second, when no reader holds the log back), whichever is
/// first. A process that is killed loses nothing either way: the log is in the operating
/// system's cache. Saves ~3 ms of every block at 10,000 subscribers (BENCHMARKS.md, tenth
/// round). Other backends (and SQLite in memory): the same pool as `durable`.
pub async fn connect_blocks(
    config: &DatabaseConfig,
    durable: &DatabaseConnection,
) -> Result<DatabaseConnection, DbErr> {
    let url = config.url.expose();
    if durable.get_database_backend() != DbBackend::Sqlite || in_memory(url) {
        return Ok(durable.clone());
    }
    let mut options = options(url, config.max_connections, config.log_statements);
    options.map_sqlx_sqlite_opts(|o| {
        o.pragma("wal_autocheckpoint", "0")
            .pragma("synchronous", "NORMAL")
    });
    Database::connect(options).await
}

/// Connects to `url` with at most `max_connections` connections.
pub async fn connect_url(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, max_connections, false, false, None).await
}

/// Whether `url` names an in-memory SQLite database, which exists once per connection.
pub fn in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// What the API's SQLite statements yield to: while the pool processes a live block (`gate`
/// closed), a statement already running pauses between two steps of SQLite's virtual
/// machine, at most `limit` after the gate closed (`http.yield_to_blocks_ms`; 0 = never).
///
/// The gate stops new requests and a request's next field (`graphql::limits`); a statement
/// already running went on to its end, and on 2 cores the API's reads (an API connection is
/// a thread of its own) then took a core from the block. A paused statement holds its read
/// snapshot only: in WAL mode a reader never blocks the writer, and the API's connections
/// write nothing (their one write, the background WAL checkpoint, is a single step).
/// PostgreSQL and MySQL run statements in their own server processes: nothing to pause here.
#[derive(Clone)]
pub struct BlockYield {
    /// Closed while a live block is processed.
    pub gate: crate::gate::BlockGate,
    /// `http.yield_to_blocks_ms`.
    pub limit: Duration,
}

/// SQLite virtual-machine steps between two looks at the gate (a few microseconds' work).
const YIELD_CHECK_STEPS: i32 = 1_000;

impl BlockYield {
    /// `pool` with the pause set on every connection it opens. SeaORM keeps one function of
    /// the SQLite pool's options (a second `map_sqlx_sqlite_pool_opts` replaces the first), so
    /// callers compose this into theirs.
    fn on_pool(&self, pool: SqlitePoolOptions) -> SqlitePoolOptions {
        if self.limit.is_zero() {
            return pool;
        }
        let this = self.clone();
        pool.after_connect(move |conn, _| {
            let this = this.clone();
            Box::pin(async move {
                conn.lock_handle()
                    .await?
                    .set_progress_handler(YIELD_CHECK_STEPS, move || {
                        this.gate.pass_blocking(this.limit);
                        // Go on with the statement (sqlx: `false` interrupts it).
                        true
                    });
                Ok(())
            })
        })
    }
}

/// The options of a SQLite pool.
type SqlitePoolOptions = sea_orm::sqlx::pool::PoolOptions<sea_orm::sqlx::Sqlite>;

/// The options every pool shares.
fn options(url: &str, max: u32, log_statements: bool) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(log_statements)
        .map_sqlx_mysql_pool_opts(|pool| pool.after_release(check_released_mysql));
    options
}

/// Connects to `url` with at most `max_connections` connections, logging every statement
/// with its duration when `log_statements` is set. With `background_checkpoints`, a SQLite
/// connection never checkpoints the write-ahead log itself (`wal_autocheckpoint = 0`):
/// SQLite's automatic checkpoint runs in the connection whose commit crosses 1,000 pages, and
/// at 200 transactions a block that was every second or third block, 10 ms added to it.
/// [`checkpoint_wal`] does it beside the blocks instead.
async fn connect_with(
    url: &str,
    max_connections: u32,
    log_statements: bool,
    background_checkpoints: bool,
    yield_to: Option<&BlockYield>,
) -> Result<DatabaseConnection, DbErr> {
    // An in-memory SQLite database exists once per connection: keep exactly one.
    let max = if in_memory(url) { 1 } else { max_connections };
    let mut options = options(url, max, log_statements);
    if background_checkpoints && max > 1 {
        options.map_sqlx_sqlite_opts(|o| o.pragma("wal_autocheckpoint", "0"));
    }
    if let Some(y) = yield_to.cloned()
        && !in_memory(url)
    {
        options.map_sqlx_sqlite_pool_opts(move |o| y.on_pool(o));
    }
    let db = Database::connect(options).await?;
    if db.get_database_backend() == DbBackend::Sqlite && max > 1 {
        // Readers do not block the writer, and the writer waits instead of failing.
        db.execute_unprepared("PRAGMA journal_mode = WAL").await?;
    }
    Ok(db)
}

/// How often [`checkpoint_wal`] copies the write-ahead log into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Copies a SQLite database's write-ahead log into the database file every
/// [`CHECKPOINT_EVERY`] until `stop` says so, in a connection of `db` (the API's: never one a
/// block waits for). A passive checkpoint takes no lock a writer needs; the next writer starts
/// the log from its beginning again once it was copied whole. Nothing to do on other backends.
pub async fn checkpoint_wal(db: DatabaseConnection, mut stop: tokio::sync::watch::Receiver<bool>) {
    if db.get_database_backend() != DbBackend::Sqlite {
        return;
    }
    loop {
        tokio::select! {
            () = tokio::time::sleep(CHECKPOINT_EVERY) => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
        if let Err(e) = db
            .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
            .await
        {
            log::debug!("WAL checkpoint: {e}");
        }
    }
}

/// The tables a block reads by key, whose statistics [`refresh_statistics`] refreshes after
/// the registry seeded many identities at once or a block changed many of them (a wave of
/// joins).
pub const KEYED_TABLES: &[&str] = &[
    "subscriber_utxo",
    "eligibility_interval",
    "subscriber",
    "identity_version",
];

/// The one of [`KEYED_TABLES`] that grows with every block (its outputs) whatever joins or
/// leaves: refreshed every [`stats::RECOUNT_EVERY`] blocks. Analysing the four took
/// PostgreSQL 125–185 ms beside the blocks (BENCHMARKS.md, twentieth round).
pub const BLOCK_TABLES: &[&str] = &["subscriber_utxo"];

/// Refreshes PostgreSQL's statistics of `tables` (`ANALYZE`; [`KEYED_TABLES`],
/// [`BLOCK_TABLES`]).
///
/// Without statistics (a table filled since autovacuum last ran, or autovacuum off, as on the
/// CI machine) PostgreSQL took `subscriber_utxo` for a small table and answered `chain = $1
/// AND txid_key = ANY(…)` with a scan of the whole chain: 20 ms a block at 10,000 subscribers
/// instead of 1 ms (BENCHMARKS.md, eleventh round). The same held for `subscriber` and
/// `identity_version` read 500 identities to a statement: 190–330 ms a statement while 10,000
/// subscribers joined (seventeenth round). SQLite's plans for these statements use
/// no statistics and MySQL recalculates its own: nothing to do there. A failure is logged and
/// changes nothing.
pub async fn refresh_statistics(db: &DatabaseConnection, tables: &[&str]) {
    if db.get_database_backend() != DbBackend::Postgres || tables.is_empty() {
        return;
    }
    if let Err(e) = db
        .execute_unprepared(&format!("ANALYZE {}", tables.join(", ")))
        .await
    {
        log::warn!("cannot refresh the database's statistics (ANALYZE): {e}");
    }
}

/// How long a MySQL connection handed back to the pool may take to answer a ping.
const RELEASE_PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Tests a MySQL connection handed back to the pool, with a time limit.
///
/// A query future dropped mid-flight (an HTTP client that went away, an actor stopped at
/// shutdown, a timed-out lease renewal) can leave sqlx's MySQL connection waiting for a reply
/// the server never sends. sqlx then pings it on release with no time limit: the ping waits
/// forever, the connection is never returned, the pool shrinks by one for good and
/// `close()` never finishes (found as a hanging test run on MariaDB). A connection that does
/// not answer within [`RELEASE_PING_TIMEOUT`] is closed instead (an `Err` makes sqlx drop it
/// without a goodbye), and the pool opens a fresh one when it needs it.
fn check_released_mysql(
    conn: &mut sea_orm::sqlx::MySqlConnection,
    _meta: sea_orm::sqlx::pool::PoolConnectionMetadata,
) -> futures_util::future::BoxFuture<'_, Result<bool, sea_orm::sqlx::Error>> {
    Box::pin(async move {
        use sea_orm::sqlx::Connection as _;
        match tokio::time::timeout(RELEASE_PING_TIMEOUT, conn.ping()).await {
            Ok(Ok(())) => Ok(true),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(sea_orm::sqlx::Error::Protocol(
                "the connection did not answer a ping after a cancelled query".into(),
            )),
        }
    })
}

/// `SUM(col)` as a BIGINT on every backend (PostgreSQL and MySQL widen sums to NUMERIC).
pub(crate) fn sum_i64(backend: DbBackend, column: &str) -> SimpleExpr {
    let cast = match backend {
        DbBackend::Postgres => "BIGINT",
        DbBackend::MySql => "SIGNED",
        _ => "INTEGER",
    };
    Expr::cust(format!("CAST(COALESCE(SUM({column}), 0) AS {cast})"))
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    migration::Migrator::up(db, None).await
}

/// Whether the database answers a trivial query.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.ping().await
}

/// The current time, as stored in `*_at` columns: UTC without a zone (see the migrations).
pub fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// Reads a stored enum spelling, or reports the row as corrupt.
pub(crate) fn parse_stored<T>(
    text: &str,
    parse: impl Fn(&str) -> Option<T>,
    what: &str,
) -> StoreResult<T> {
    parse(text).ok_or_else(|| StoreError::Corrupt(format!("{what} {text:?}")))
}

/// Begins a transaction that will write. On SQLite it starts as `BEGIN IMMEDIATE`: it takes
/// the write lock at once (waiting the busy timeout if another writer holds it), so it can
/// never fail half-way with `SQLITE_BUSY_SNAPSHOT` when another actor committed after its
/// first read. Other backends ignore the mode.
pub async fn begin_write(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction, DbErr> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}
