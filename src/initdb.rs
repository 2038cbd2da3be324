//! The library side of `piw-initdb`: create the piwheels schema in an empty
//! database, or upgrade an older one, one step at a time.
//!
//! The flow the binary follows:
//!
//! 1. [`connect`] with an administrative DSN (must be a superuser);
//! 2. [`prepare`]: checks the connecting role is a superuser and the target
//!    role exists and is not one, detects the schema level and returns a
//!    [`Plan`] without changing anything;
//! 3. show [`Plan::describe`] and ask the user;
//! 4. [`execute`] the plan: every statement of every script runs in ONE
//!    transaction, so a failure changes nothing.
//!
//! Scripts are embedded in the binary. They contain two placeholders,
//! `{username}` and `{dbname}`, replaced by the quoted role and database
//! names (see `sql/README.md`).

use std::borrow::Cow;
use std::fmt;

use postgres::Client;

use crate::SCHEMA_VERSION;

/// The script that creates the schema from nothing.
pub const CREATE_SCRIPT: &str = include_str!("../sql/create_piwheels.sql");

/// The upgrade steps we ship, as (from, to, script). Each script moves a
/// database from exactly one schema level to the next.
pub const UPGRADE_SCRIPTS: &[(&str, &str, &str)] = &[(
    "0.22",
    "0.23",
    include_str!("../sql/update_piwheels_0.22_to_0.23.sql"),
)];

/// The oldest schema level we can upgrade from. Older databases must first
/// be brought to this level with piwheels' own piw-initdb.
pub const OLDEST_UPGRADABLE: &str = "0.22";

/// What a database currently holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbVersion {
    /// No `packages` table: nothing of piwheels is there.
    Empty,
    /// piwheels tables without a `configuration` table (before 0.6).
    Legacy,
    /// The level stored in `configuration.version`.
    Version(String),
}

impl fmt::Display for DbVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbVersion::Empty => f.write_str("empty"),
            DbVersion::Legacy => f.write_str("older than 0.6"),
            DbVersion::Version(v) => f.write_str(v),
        }
    }
}

/// One script to run.
#[derive(Debug, Clone)]
pub struct Script {
    /// A name for messages, e.g. `update_piwheels_0.22_to_0.23.sql`.
    pub name: Cow<'static, str>,
    /// The SQL, with placeholders.
    pub sql: Cow<'static, str>,
}

/// What [`execute`] will do; built by [`plan`] (or [`prepare`]) without
/// touching the database.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The level the database is at now.
    pub from: DbVersion,
    /// The level it will be at afterwards.
    pub to: String,
    /// The scripts to run, in order. Empty when the database is current.
    pub scripts: Vec<Script>,
}

impl Plan {
    /// True when there is nothing to do.
    pub fn is_noop(&self) -> bool {
        self.scripts.is_empty()
    }

    /// A sentence for the user saying what will happen.
    pub fn describe(&self) -> String {
        match &self.from {
            _ if self.is_noop() => {
                format!("The database is the current version ({})", self.to)
            }
            DbVersion::Empty => format!(
                "The database is empty; the piwheels schema (version {}) will be created",
                self.to
            ),
            from => {
                let names: Vec<&str> = self.scripts.iter().map(|s| s.name.as_ref()).collect();
                format!(
                    "The database will be upgraded from version {} to {} ({})",
                    from,
                    self.to,
                    names.join(", ")
                )
            }
        }
    }
}

/// Everything that can stop piw-initdb.
#[derive(Debug)]
pub enum InitDbError {
    /// Could not connect (the database may not exist).
    Connect(String),
    /// The connecting role is not a superuser.
    NotSuperuser(String),
    /// The target role does not exist.
    MissingUser(String),
    /// The target role is a superuser.
    SuperuserTarget(String),
    /// The schema is older than we can upgrade.
    TooOld(DbVersion),
    /// The schema is newer than ours: we never downgrade.
    Newer(String),
    /// A `configuration.version` we cannot read as a version number.
    UnknownVersion(String),
    /// No chain of scripts leads from `from` to our level.
    NoUpgradePath { from: String, to: String },
    /// A script contains BEGIN/COMMIT/ROLLBACK, which would break the
    /// single-transaction guarantee.
    TransactionControl { script: String, statement: String },
    /// A statement failed; the transaction was rolled back.
    Statement {
        script: String,
        index: usize,
        statement: String,
        error: postgres::Error,
    },
    /// Any other database error.
    Db(postgres::Error),
    /// The scripts ran but the database did not end up at the planned level.
    Verify { expected: String, found: String },
}

impl fmt::Display for InitDbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitDbError::Connect(msg) => write!(
                f,
                "Unable to connect to the database ({msg}); if it does not exist, create \
                 it first with createdb"
            ),
            InitDbError::NotSuperuser(u) => write!(
                f,
                "{u} is not a cluster superuser; piw-initdb must connect as one (e.g. postgres)"
            ),
            InitDbError::MissingUser(u) => write!(
                f,
                "The user {u} does not exist; create it first (e.g. createuser {u})"
            ),
            InitDbError::SuperuserTarget(u) => write!(
                f,
                "The user {u} is a cluster superuser; the piwheels user must be unprivileged"
            ),
            InitDbError::TooOld(v) => write!(
                f,
                "The database is at version {v}, older than {OLDEST_UPGRADABLE}; upgrade it \
                 to {OLDEST_UPGRADABLE} with piwheels' own piw-initdb first, then run this \
                 one"
            ),
            InitDbError::Newer(v) => write!(
                f,
                "The database is at version {v}, newer than this software ({SCHEMA_VERSION}); \
                 refusing to downgrade it"
            ),
            InitDbError::UnknownVersion(v) => {
                write!(f, "The database reports an unrecognised version {v:?}")
            }
            InitDbError::NoUpgradePath { from, to } => {
                write!(f, "Unable to find upgrade path from {from} to {to}")
            }
            InitDbError::TransactionControl { script, statement } => write!(
                f,
                "{script} contains a transaction control statement ({statement}); scripts \
                 must not, as piw-initdb runs everything in one transaction"
            ),
            InitDbError::Statement {
                script,
                index,
                statement,
                error,
            } => {
                let first = statement.lines().next().unwrap_or("");
                write!(
                    f,
                    "Statement {} of {script} failed ({first} ...): {}; nothing was changed",
                    index + 1,
                    db_error_text(error)
                )
            }
            InitDbError::Db(e) => write!(f, "Database error: {}", db_error_text(e)),
            InitDbError::Verify { expected, found } => write!(
                f,
                "After the scripts the database reports version {found}, not {expected}; \
                 nothing was changed"
            ),
        }
    }
}

impl std::error::Error for InitDbError {}

impl From<postgres::Error> for InitDbError {
    fn from(e: postgres::Error) -> Self {
        InitDbError::Db(e)
    }
}

fn db_error_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// Connects to `dsn` (any form [`crate::db::dsn::parse`] accepts, including
/// the default `postgres:///piwheels`).
pub fn connect(dsn: &str) -> Result<Client, InitDbError> {
    let config = crate::db::dsn::parse(dsn).map_err(|e| InitDbError::Connect(e.to_string()))?;
    config
        .connect(postgres::NoTls)
        .map_err(|e| InitDbError::Connect(db_error_text(&e)))
}

/// Refuses unless the connected role is a superuser.
pub fn check_superuser(client: &mut Client) -> Result<(), InitDbError> {
    let row = client.query_one(
        "SELECT current_user::text, rolsuper FROM pg_roles WHERE rolname = current_user",
        &[],
    )?;
    let (name, superuser): (String, bool) = (row.get(0), row.get(1));
    if superuser {
        Ok(())
    } else {
        Err(InitDbError::NotSuperuser(name))
    }
}

/// Refuses unless `username` exists and is not a superuser.
pub fn check_target_user(client: &mut Client, username: &str) -> Result<(), InitDbError> {
    let row = client.query_opt(
        "SELECT rolsuper FROM pg_roles WHERE rolname = $1",
        &[&username],
    )?;
    match row {
        None => Err(InitDbError::MissingUser(username.to_owned())),
        Some(r) if r.get::<_, bool>(0) => Err(InitDbError::SuperuserTarget(username.to_owned())),
        Some(_) => Ok(()),
    }
}

/// Reads the schema level: `configuration.version`, or [`DbVersion::Empty`]
/// when there is no `packages` table.
pub fn detect_version(client: &mut Client) -> Result<DbVersion, InitDbError> {
    let row = client.query_one(
        "SELECT to_regclass('public.configuration') IS NOT NULL, \
                to_regclass('public.packages') IS NOT NULL",
        &[],
    )?;
    let (has_config, has_packages): (bool, bool) = (row.get(0), row.get(1));
    if has_config {
        let row = client.query_opt(
            "SELECT version::text FROM public.configuration ORDER BY id LIMIT 1",
            &[],
        )?;
        match row {
            Some(r) => Ok(DbVersion::Version(r.get(0))),
            None => Err(InitDbError::UnknownVersion(String::new())),
        }
    } else if has_packages {
        Ok(DbVersion::Legacy)
    } else {
        Ok(DbVersion::Empty)
    }
}

/// Parses "0.23" into [0, 23] for ordering.
fn version_key(v: &str) -> Option<Vec<u32>> {
    v.split('.').map(|p| p.parse().ok()).collect()
}

/// Builds the plan that takes a database at `from` to [`SCHEMA_VERSION`],
/// using the scripts we ship.
pub fn plan(from: &DbVersion) -> Result<Plan, InitDbError> {
    plan_with(from, SCHEMA_VERSION, UPGRADE_SCRIPTS)
}

/// [`plan`] with an explicit target and set of steps (for tests).
pub fn plan_with(
    from: &DbVersion,
    target: &str,
    steps: &[(&'static str, &'static str, &'static str)],
) -> Result<Plan, InitDbError> {
    let current = match from {
        DbVersion::Empty => {
            return Ok(Plan {
                from: from.clone(),
                to: target.to_owned(),
                scripts: vec![Script {
                    name: Cow::Borrowed("create_piwheels.sql"),
                    sql: Cow::Borrowed(CREATE_SCRIPT),
                }],
            });
        }
        DbVersion::Legacy => return Err(InitDbError::TooOld(from.clone())),
        DbVersion::Version(v) => v.clone(),
    };
    let key = version_key(&current).ok_or_else(|| InitDbError::UnknownVersion(current.clone()))?;
    let target_key = version_key(target).expect("our own schema version parses");
    if key > target_key {
        return Err(InitDbError::Newer(current));
    }
    if key < version_key(OLDEST_UPGRADABLE).expect("constant parses") {
        return Err(InitDbError::TooOld(from.clone()));
    }
    let mut scripts = Vec::new();
    let mut at = current.clone();
    while at != target {
        let Some(&(step_from, step_to, sql)) = steps.iter().find(|(f, _, _)| *f == at) else {
            return Err(InitDbError::NoUpgradePath {
                from: current,
                to: target.to_owned(),
            });
        };
        scripts.push(Script {
            name: Cow::Owned(format!("update_piwheels_{step_from}_to_{step_to}.sql")),
            sql: Cow::Borrowed(sql),
        });
        at = step_to.to_owned();
        if scripts.len() > steps.len() {
            return Err(InitDbError::NoUpgradePath {
                from: current,
                to: target.to_owned(),
            });
        }
    }
    Ok(Plan {
        from: from.clone(),
        to: target.to_owned(),
        scripts,
    })
}

/// Steps 2 of the module's flow: all checks, then the plan. Changes nothing.
pub fn prepare(client: &mut Client, username: &str) -> Result<Plan, InitDbError> {
    check_superuser(client)?;
    check_target_user(client, username)?;
    let version = detect_version(client)?;
    plan(&version)
}

/// Quotes an SQL identifier the way PostgreSQL's `quote_ident` would when
/// quoting is needed; always quoting is equally valid, so we always quote.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Replaces the `{username}` and `{dbname}` placeholders.
pub fn substitute(statement: &str, username: &str, dbname: &str) -> String {
    statement
        .replace("{username}", &quote_ident(username))
        .replace("{dbname}", &quote_ident(dbname))
}

/// Runs the plan in one transaction, calling `progress(done, total)` after
/// each statement. On any error the transaction is rolled back and the
/// database is unchanged.
pub fn execute(
    client: &mut Client,
    plan: &Plan,
    username: &str,
    mut progress: impl FnMut(usize, usize),
) -> Result<(), InitDbError> {
    if plan.is_noop() {
        return Ok(());
    }
    let dbname: String = client
        .query_one("SELECT current_database()::text", &[])?
        .get(0);
    // Split and check everything before touching the database.
    let mut work: Vec<(&str, usize, String)> = Vec::new();
    for script in &plan.scripts {
        for (index, stmt) in split_statements(&script.sql).into_iter().enumerate() {
            if is_transaction_control(stmt) {
                return Err(InitDbError::TransactionControl {
                    script: script.name.to_string(),
                    statement: stmt.lines().next().unwrap_or("").to_owned(),
                });
            }
            work.push((&script.name, index, substitute(stmt, username, &dbname)));
        }
    }
    let total = work.len();
    let mut tx = client.transaction()?;
    for (done, (script, index, stmt)) in work.iter().enumerate() {
        log::debug!(target: "initdb", "{script} #{}: {stmt}", index + 1);
        if let Err(error) = tx.batch_execute(stmt) {
            // Dropping `tx` rolls back.
            return Err(InitDbError::Statement {
                script: script.to_string(),
                index: *index,
                statement: stmt.clone(),
                error,
            });
        }
        progress(done + 1, total);
    }
    let found: String = tx
        .query_one(
            "SELECT version::text FROM configuration ORDER BY id LIMIT 1",
            &[],
        )?
        .get(0);
    if found != plan.to {
        return Err(InitDbError::Verify {
            expected: plan.to.clone(),
            found,
        });
    }
    tx.commit()?;
    Ok(())
}

/// True if the statement begins with a transaction control keyword.
fn is_transaction_control(stmt: &str) -> bool {
    let word: String = stmt
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    matches!(
        word.as_str(),
        "BEGIN" | "COMMIT" | "ROLLBACK" | "START" | "END" | "ABORT" | "SAVEPOINT" | "RELEASE"
    ) && !stmt.trim_start()[word.len()..]
        .trim_start()
        .starts_with('(')
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// Splits an SQL script into statements at top-level semicolons.
///
/// Understands `--` line comments, nested `/* */` block comments, `'...'`
/// strings (with `''`), `E'...'` strings (with backslash escapes), `"..."`
/// identifiers and `$tag$...$tag$` dollar quoting. Each statement is
/// returned without its semicolon and without leading comments and blanks;
/// statements that hold nothing but comments are dropped. An unterminated
/// final statement (no semicolon) is returned too.
pub fn split_statements(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    // Start of the first code byte of the current statement, if any yet.
    let mut start: Option<usize> = None;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        match c {
            b'-' if next == Some(b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if next == Some(b'*') => {
                let mut depth = 1;
                i += 2;
                while i < bytes.len() && depth > 0 {
                    if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            b';' => {
                if let Some(s) = start.take() {
                    out.push(sql[s..i].trim_end());
                }
                i += 1;
                continue;
            }
            _ if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            _ => {}
        }
        if start.is_none() {
            start = Some(i);
        }
        match c {
            b'\'' => {
                let escapes = i > 0
                    && matches!(bytes[i - 1], b'E' | b'e')
                    && (i < 2 || !is_ident_char(bytes[i - 2]));
                i = skip_quoted(bytes, i, b'\'', escapes);
            }
            b'"' => i = skip_quoted(bytes, i, b'"', false),
            b'$' if i == 0 || !is_ident_char(bytes[i - 1]) => {
                // A dollar quote opens with $tag$ where tag is empty or an
                // identifier not starting with a digit ($1 is a parameter).
                let mut j = i + 1;
                while j < bytes.len()
                    && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_' || bytes[j] >= 0x80)
                {
                    j += 1;
                }
                let tag_ok =
                    bytes.get(j) == Some(&b'$') && (j == i + 1 || !bytes[i + 1].is_ascii_digit());
                if tag_ok {
                    let tag = &sql[i..=j];
                    match sql[j + 1..].find(tag) {
                        Some(end) => i = j + 1 + end + tag.len(),
                        None => i = bytes.len(),
                    }
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    if let Some(s) = start {
        let rest = sql[s..].trim_end();
        if !rest.is_empty() {
            out.push(rest);
        }
    }
    out
}

/// Skips a quoted token starting at `bytes[i]` (the opening quote); returns
/// the index just past the closing quote.
fn skip_quoted(bytes: &[u8], mut i: usize, quote: u8, backslash_escapes: bool) -> usize {
    i += 1;
    while i < bytes.len() {
        let c = bytes[i];
        if backslash_escapes && c == b'\\' {
            i += 2;
        } else if c == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_simple_statements() {
        assert_eq!(
            split_statements("SELECT 1; SELECT 2;\n  SELECT 3"),
            vec!["SELECT 1", "SELECT 2", "SELECT 3"]
        );
    }

    #[test]
    fn ignores_semicolons_in_comments_and_quotes() {
        let sql = "-- a; comment\nSELECT ';', \"a;b\" /* x; /* nested; */ y; */ FROM t;\n\
                   SELECT E'it\\'s; fine', 'it''s; fine';";
        let got = split_statements(sql);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("SELECT ';'"));
        assert!(got[1].ends_with("'it''s; fine'"));
    }

    #[test]
    fn understands_dollar_quoting() {
        let sql = "CREATE FUNCTION f() RETURNS int AS $fn$ SELECT 1; $x$;$x$ $fn$ LANGUAGE sql;\n\
                   SELECT $$a;b$$; SELECT $1;";
        let got = split_statements(sql);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].ends_with("LANGUAGE sql"));
        assert_eq!(got[1], "SELECT $$a;b$$");
        assert_eq!(got[2], "SELECT $1");
    }

    #[test]
    fn plain_quote_after_identifier_e_is_not_an_escape_string() {
        // "name'..." is not E'' because E is part of an identifier.
        let got = split_statements("SELECT 'a\\'; SELECT 2;");
        assert_eq!(got, vec!["SELECT 'a\\'", "SELECT 2"]);
    }

    #[test]
    fn drops_comment_only_statements() {
        assert_eq!(
            split_statements("-- only\n;/* c */;\n-- tail"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn detects_transaction_control() {
        assert!(is_transaction_control("COMMIT"));
        assert!(is_transaction_control("  begin work"));
        assert!(!is_transaction_control("COMMENT ON TABLE x IS 'y'"));
        assert!(!is_transaction_control("CREATE TABLE begin_x (a int)"));
    }

    #[test]
    fn plans() {
        let p = plan(&DbVersion::Empty).unwrap();
        assert_eq!(p.scripts.len(), 1);
        let p = plan(&DbVersion::Version(SCHEMA_VERSION.into())).unwrap();
        assert!(p.is_noop());
        let p = plan(&DbVersion::Version("0.22".into())).unwrap();
        assert_eq!(p.scripts[0].name, "update_piwheels_0.22_to_0.23.sql");
        assert!(matches!(
            plan(&DbVersion::Version("0.21".into())),
            Err(InitDbError::TooOld(_))
        ));
        assert!(matches!(
            plan(&DbVersion::Version("0.24".into())),
            Err(InitDbError::Newer(_))
        ));
        assert!(matches!(
            plan(&DbVersion::Version("banana".into())),
            Err(InitDbError::UnknownVersion(_))
        ));
        assert!(matches!(
            plan(&DbVersion::Legacy),
            Err(InitDbError::TooOld(_))
        ));
    }

    #[test]
    fn shipped_scripts_have_no_transaction_control() {
        for sql in std::iter::once(CREATE_SCRIPT).chain(UPGRADE_SCRIPTS.iter().map(|s| s.2)) {
            for stmt in split_statements(sql) {
                assert!(!is_transaction_control(stmt), "{stmt}");
            }
        }
    }
}
