//! The master's data layer: one typed call per stored function the master
//! uses (and the few plain SELECTs), over a synchronous `postgres` client.
//!
//! * **Connecting.** [`Database::connect`] takes a piwheels DSN (the default
//!   `postgres:///piwheels` means the local unix socket and the OS user, see
//!   [`dsn`]), refuses a superuser and refuses a schema level other than
//!   [`crate::SCHEMA_VERSION`]. Sessions use TimeZone UTC; every timestamp
//!   crosses the boundary as naive UTC (`DateTime<Utc>` in the API).
//! * **Losing the server.** The master is one poll loop, so no call blocks
//!   for long waiting for the database. When the connection breaks, the
//!   call that noticed it is retried once on a fresh connection if it is
//!   safe to repeat (reads, and writes that set a value); otherwise it fails
//!   with [`DbError::Lost`] (it may or may not have been committed) and is
//!   never silently dropped. While the server stays unreachable, calls fail
//!   at once with [`DbError::Unavailable`] until the next reconnection time,
//!   which backs off from [`Options::backoff_min`] to
//!   [`Options::backoff_max`]; the caller decides what to do meanwhile.
//! * **Batches.** [`Database::transaction`] runs many calls in one
//!   transaction (one commit instead of one per call, and all-or-nothing);
//!   nothing inside a batch is retried or reconnected.
//! * **Big results** (`get_build_queue`, `get_search_index`, all packages)
//!   stream through a callback row by row; collecting helpers exist too.
//! * **Composite arrays** (`files[]`, `dependencies[]`,
//!   `rewrites_pending[]`) are built inside our SQL from parallel arrays of
//!   scalars (`unnest(...) WITH ORDINALITY` into `ROW(...)::files`), so the
//!   stored functions keep piwheels' signatures and nothing is escaped by
//!   hand.

mod bulk;
mod calls;
pub mod dsn;
mod project;
mod types;

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Row, Statement};

pub use bulk::ProjectRow;
pub use project::{AbiStatus, BuildStatus, FileInfo, ProjectData, Release};
pub use types::{
    AccessLog, BuildLog, BuiltFile, HitLog, RewriteCommand, RewritePending, Statistics, sanitize,
};

/// Tunables of a [`Database`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Limit on establishing a connection (TCP connect and start-up).
    pub connect_timeout: Duration,
    /// First wait after a failed reconnection.
    pub backoff_min: Duration,
    /// Longest wait between reconnection attempts.
    pub backoff_max: Duration,
    /// `statement_timeout` for `get_build_queue`.
    pub queue_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connect_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            queue_timeout: Duration::from_secs(600),
        }
    }
}

/// Why a call failed.
#[derive(Debug)]
pub enum DbError {
    /// Not connected; no attempt is made before `retry_in` has passed.
    Unavailable {
        /// Time until the next reconnection attempt.
        retry_in: Duration,
        /// Why the last attempt failed.
        reason: String,
    },
    /// The connection broke during a call that is not safe to repeat; it
    /// may or may not have taken effect. The next call reconnects.
    Lost(postgres::Error),
    /// The server refused the statement (constraint, timeout, ...); the
    /// connection is still good.
    Query(postgres::Error),
    /// The role connected is a superuser; piwheels requires an
    /// unprivileged one.
    Superuser(String),
    /// The schema level is not ours.
    Version {
        /// What `configuration.version` holds (None: no such table).
        found: Option<String>,
    },
    /// The database sent something we cannot interpret.
    Data(String),
}

impl DbError {
    /// True for errors that mean "the database is not there right now"
    /// (retrying later may succeed).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DbError::Unavailable { .. } | DbError::Lost(_))
    }

    /// True for a statement cancelled by `statement_timeout` or a cancel
    /// request.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, DbError::Query(e)
            if e.code() == Some(&postgres::error::SqlState::QUERY_CANCELED))
    }
}

fn pg_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => e.to_string(),
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Unavailable { retry_in, reason } => write!(
                f,
                "database unavailable ({reason}); retrying in {:.1}s",
                retry_in.as_secs_f64()
            ),
            DbError::Lost(e) => write!(
                f,
                "database connection lost during the request ({}); it may not have \
                 been applied",
                pg_text(e)
            ),
            DbError::Query(e) => write!(f, "database error: {}", pg_text(e)),
            DbError::Superuser(u) => write!(
                f,
                "refusing to run as the database superuser {u}: connect as the \
                 unprivileged piwheels user (the one given to piw-initdb --user)"
            ),
            DbError::Version { found } => write!(
                f,
                "Database version ({}) does not match software version ({}); run \
                 piw-initdb to create or upgrade the database",
                found.as_deref().unwrap_or("none"),
                crate::SCHEMA_VERSION
            ),
            DbError::Data(msg) => write!(f, "unexpected data from the database: {msg}"),
        }
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DbError::Lost(e) | DbError::Query(e) => Some(e),
            _ => None,
        }
    }
}

/// True when `e` means the connection is gone (rather than the statement
/// being refused).
fn is_connection_error(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let c = code.code();
        // 08xxx connection exception; 57P01..57P03 shutdown / cannot connect.
        return c.starts_with("08") || c == "57P01" || c == "57P02" || c == "57P03";
    }
    // No SQLSTATE: an I/O or protocol failure, unless it is a conversion
    // error of ours (those come with a non-I/O source and an open client).
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// An open connection with its prepared statements.
pub(crate) struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
    /// A batch transaction ([`Database::transaction`]) is open.
    in_batch: bool,
}

impl Conn {
    fn statement(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }

    /// Runs a cached statement and returns all rows.
    pub(crate) fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query(&s, params)
    }

    /// Runs a cached statement that returns exactly one row.
    pub(crate) fn query_one(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query_one(&s, params)
    }

    /// Runs a cached statement that returns at most one row.
    pub(crate) fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query_opt(&s, params)
    }

    /// Runs a cached statement, ignoring its rows.
    pub(crate) fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.execute(&s, params)
    }

    /// Streams the rows of `sql` to `each`, one at a time. Runs inside a
    /// transaction with `statement_timeout` set when `timeout` is given
    /// (inside the caller's batch transaction, if one is open).
    pub(crate) fn stream(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
        timeout: Option<Duration>,
        each: &mut dyn FnMut(&Row) -> Result<(), DbError>,
        started: &mut bool,
    ) -> Result<Result<usize, DbError>, postgres::Error> {
        use postgres::fallible_iterator::FallibleIterator;
        let s = self.statement(sql)?;
        let own = !self.in_batch;
        if own {
            self.client.batch_execute("BEGIN")?;
        }
        if let Some(t) = timeout {
            self.client.batch_execute(&format!(
                "SET LOCAL statement_timeout = {}",
                t.as_millis().max(1)
            ))?;
        }
        let result = (|| {
            let mut rows = self.client.query_raw(&s, params.iter().copied())?;
            let mut n = 0;
            while let Some(row) = rows.next()? {
                *started = true;
                if let Err(e) = each(&row) {
                    return Ok(Err(e));
                }
                n += 1;
            }
            Ok(Ok(n))
        })();
        match (&result, own) {
            (Ok(_), true) => self.client.batch_execute("COMMIT")?,
            (Err(_), true) => {
                let _ = self.client.batch_execute("ROLLBACK");
            }
            (Ok(_), false) if timeout.is_some() => self
                .client
                .batch_execute("SET LOCAL statement_timeout TO DEFAULT")?,
            _ => {}
        }
        result
    }

    /// Runs `f` in a transaction (for calls made of several statements), or
    /// inside the caller's batch transaction if one is open.
    pub(crate) fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut dyn Sql) -> Result<T, postgres::Error>,
    ) -> Result<T, postgres::Error> {
        if self.in_batch {
            return f(&mut self.client);
        }
        let mut tx = self.client.transaction()?;
        let v = f(&mut tx)?;
        tx.commit()?;
        Ok(v)
    }
}

/// The statements a multi-statement call needs, on a client or inside a
/// transaction alike.
pub(crate) trait Sql {
    fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error>;
    fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, postgres::Error>;
}

impl Sql for Client {
    fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        Client::query(self, sql, params)
    }
    fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, postgres::Error> {
        Client::query_one(self, sql, params)
    }
}

impl Sql for postgres::Transaction<'_> {
    fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        postgres::Transaction::query(self, sql, params)
    }
    fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, postgres::Error> {
        postgres::Transaction::query_one(self, sql, params)
    }
}

/// Whether a call may be repeated after the connection broke under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reads and writes that set a value: repeat once on a new connection.
    Safe,
    /// Inserts and calls whose result depends on being first: report.
    Unsafe,
}

/// The master's connection to the piwheels database.
pub struct Database {
    config: Config,
    options: Options,
    conn: Option<Conn>,
    next_attempt: Instant,
    backoff: Duration,
    last_failure: String,
    /// Inside [`Database::transaction`].
    batch: bool,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("target", &dsn::describe(&self.config))
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

impl Database {
    /// Connects to `dsn` with default [`Options`]. Fails (rather than
    /// backing off) when the first connection cannot be made, the role is a
    /// superuser, or the schema level is not ours.
    pub fn connect(dsn: &str) -> Result<Database, DbError> {
        Database::connect_with(dsn, Options::default())
    }

    /// [`Database::connect`] with explicit options.
    pub fn connect_with(dsn: &str, options: Options) -> Result<Database, DbError> {
        let mut config = dsn::parse(dsn).map_err(|e| DbError::Unavailable {
            retry_in: Duration::ZERO,
            reason: format!("invalid DSN: {e}"),
        })?;
        config.connect_timeout(options.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("piw-master");
        }
        let mut db = Database {
            config,
            backoff: options.backoff_min,
            options,
            conn: None,
            next_attempt: Instant::now(),
            last_failure: String::new(),
            batch: false,
        };
        db.conn = Some(db.open()?);
        Ok(db)
    }

    /// Where this database is (for logs; no password).
    pub fn describe(&self) -> String {
        dsn::describe(&self.config)
    }

    /// True while a connection is open.
    pub fn is_connected(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| !c.client.is_closed())
    }

    /// When disconnected: the time of the next reconnection attempt.
    pub fn next_attempt(&self) -> Option<Instant> {
        (!self.is_connected()).then_some(self.next_attempt)
    }

    /// A token that cancels the statement running on this connection (from
    /// another thread, e.g. to stop a long `get_build_queue` at shutdown).
    pub fn cancel_token(&self) -> Option<postgres::CancelToken> {
        self.conn.as_ref().map(|c| c.client.cancel_token())
    }

    /// Closes the connection (the next call reconnects).
    pub fn disconnect(&mut self) {
        self.conn = None;
        self.next_attempt = Instant::now();
    }

    /// Opens and checks a connection.
    fn open(&mut self) -> Result<Conn, DbError> {
        let mut client = self
            .config
            .connect(NoTls)
            .map_err(|e| DbError::Unavailable {
                retry_in: Duration::ZERO,
                reason: pg_text(&e),
            })?;
        let check = |client: &mut Client| -> Result<Result<(), DbError>, postgres::Error> {
            client.batch_execute("SET TIME ZONE 'UTC'")?;
            let row = client.query_one(
                "SELECT current_user::text, \
                        (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), \
                        to_regclass('public.configuration') IS NOT NULL",
                &[],
            )?;
            let (user, superuser, has_config): (String, Option<bool>, bool) =
                (row.get(0), row.get(1), row.get(2));
            if superuser.unwrap_or(false) {
                return Ok(Err(DbError::Superuser(user)));
            }
            let found: Option<String> = if has_config {
                client
                    .query_opt("SELECT version::text FROM configuration LIMIT 1", &[])?
                    .map(|r| r.get(0))
            } else {
                None
            };
            if found.as_deref() != Some(crate::SCHEMA_VERSION) {
                return Ok(Err(DbError::Version { found }));
            }
            Ok(Ok(()))
        };
        match check(&mut client) {
            Ok(Ok(())) => Ok(Conn {
                client,
                statements: HashMap::new(),
                in_batch: false,
            }),
            Ok(Err(e)) => Err(e),
            Err(e) if is_connection_error(&e) => Err(DbError::Unavailable {
                retry_in: Duration::ZERO,
                reason: pg_text(&e),
            }),
            Err(e) => Err(DbError::Query(e)),
        }
    }

    /// Makes sure a connection is open, reconnecting if the back-off allows.
    fn ensure(&mut self) -> Result<&mut Conn, DbError> {
        if self.conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            self.conn = None;
        }
        if self.batch && self.conn.is_none() {
            // Reconnecting would run the rest of the batch outside it.
            return Err(DbError::Data(
                "the connection was lost during a batch transaction".into(),
            ));
        }
        if self.conn.is_none() {
            let now = Instant::now();
            if now < self.next_attempt {
                return Err(DbError::Unavailable {
                    retry_in: self.next_attempt - now,
                    reason: self.last_failure.clone(),
                });
            }
            match self.open() {
                Ok(conn) => {
                    if !self.last_failure.is_empty() {
                        log::info!("reconnected to the {}", self.describe());
                    }
                    self.conn = Some(conn);
                    self.backoff = self.options.backoff_min;
                    self.last_failure.clear();
                }
                Err(e) => {
                    let wait = self.backoff;
                    self.next_attempt = Instant::now() + wait;
                    self.backoff = (self.backoff * 2).min(self.options.backoff_max);
                    self.last_failure = match &e {
                        DbError::Unavailable { reason, .. } => reason.clone(),
                        other => other.to_string(),
                    };
                    log::warn!(
                        "cannot reach the {} ({}); next attempt in {:.1}s",
                        self.describe(),
                        self.last_failure,
                        wait.as_secs_f64()
                    );
                    return Err(match e {
                        DbError::Unavailable { reason, .. } => DbError::Unavailable {
                            retry_in: wait,
                            reason,
                        },
                        other => other,
                    });
                }
            }
        }
        Ok(self.conn.as_mut().expect("connection just ensured"))
    }

    /// Marks the connection broken after `e`; the next call may reconnect
    /// at once.
    fn broken(&mut self, e: &postgres::Error) {
        log::warn!(
            "lost the connection to the {}: {}",
            self.describe(),
            pg_text(e)
        );
        self.conn = None;
        self.next_attempt = Instant::now();
        self.last_failure = pg_text(e);
    }

    /// Runs `f` on the connection with the retry policy `retry`.
    pub(crate) fn run<T>(
        &mut self,
        retry: Retry,
        mut f: impl FnMut(&mut Conn) -> Result<T, postgres::Error>,
    ) -> Result<T, DbError> {
        let conn = self.ensure()?;
        let in_batch = conn.in_batch;
        match f(conn) {
            Ok(v) => Ok(v),
            Err(e) if is_connection_error(&e) => {
                self.broken(&e);
                // Inside a batch nothing is repeated: the whole batch failed.
                if retry == Retry::Unsafe || in_batch {
                    return Err(DbError::Lost(e));
                }
                let conn = self.ensure()?;
                match f(conn) {
                    Ok(v) => Ok(v),
                    Err(e) if is_connection_error(&e) => {
                        self.broken(&e);
                        Err(DbError::Lost(e))
                    }
                    Err(e) => Err(DbError::Query(e)),
                }
            }
            Err(e) => Err(DbError::Query(e)),
        }
    }

    /// Streams rows to `each`. Retried once on a new connection only when
    /// the connection broke before the first row was delivered.
    pub(crate) fn run_stream(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
        timeout: Option<Duration>,
        each: &mut dyn FnMut(&Row) -> Result<(), DbError>,
    ) -> Result<usize, DbError> {
        for attempt in 0..2 {
            let conn = self.ensure()?;
            let in_batch = conn.in_batch;
            let mut started = false;
            match conn.stream(sql, params, timeout, each, &mut started) {
                Ok(result) => return result,
                Err(e) if is_connection_error(&e) => {
                    self.broken(&e);
                    if started || attempt == 1 || in_batch {
                        return Err(DbError::Lost(e));
                    }
                }
                Err(e) => return Err(DbError::Query(e)),
            }
        }
        unreachable!("the loop returns on its second pass")
    }

    /// Runs every call `f` makes in one transaction: all of them take
    /// effect or none does. Use it to batch many small writes (one commit
    /// instead of one per call; an order of magnitude faster) and to keep
    /// a value consistent with the rows it describes (the PyPI serial with
    /// the events it covers).
    ///
    /// Nothing inside is retried: if the connection breaks, `f`'s next call
    /// fails and the whole batch reports [`DbError::Lost`] (when it broke
    /// during COMMIT the outcome is unknown, as for any lost write). If `f`
    /// returns an error, the transaction is rolled back. Batches do not
    /// nest.
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut Database) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let conn = self.ensure()?;
        if conn.in_batch {
            return Err(DbError::Data("batch transactions do not nest".into()));
        }
        if let Err(e) = conn.client.batch_execute("BEGIN") {
            return Err(self.fail(e));
        }
        conn.in_batch = true;
        self.batch = true;
        let result = f(self);
        self.batch = false;
        let Some(conn) = self.conn.as_mut().filter(|c| c.in_batch) else {
            // The connection broke inside; the server rolled back.
            return match result {
                Err(e) => Err(e),
                Ok(_) => Err(DbError::Data(
                    "the connection was lost during a batch transaction".into(),
                )),
            };
        };
        conn.in_batch = false;
        match result {
            Ok(v) => match conn.client.batch_execute("COMMIT") {
                Ok(()) => Ok(v),
                Err(e) => Err(self.fail(e)),
            },
            Err(e) => {
                if let Err(re) = conn.client.batch_execute("ROLLBACK") {
                    let _ = self.fail(re);
                }
                Err(e)
            }
        }
    }

    /// Classifies a failed statement of our own, marking the connection
    /// broken when it is.
    fn fail(&mut self, e: postgres::Error) -> DbError {
        if is_connection_error(&e) {
            self.broken(&e);
            DbError::Lost(e)
        } else {
            DbError::Query(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<Database>();
    }

    #[test]
    fn errors_read_well() {
        let e = DbError::Version {
            found: Some("0.22".into()),
        };
        let s = e.to_string();
        assert!(s.contains("0.22") && s.contains("0.23") && s.contains("piw-initdb"));
        let e = DbError::Superuser("postgres".into());
        assert!(e.to_string().contains("unprivileged"));
        let e = DbError::Unavailable {
            retry_in: Duration::from_millis(1500),
            reason: "refused".into(),
        };
        assert!(e.is_unavailable());
        assert!(e.to_string().contains("1.5s"));
    }
}
