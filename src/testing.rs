//! Test support: a fresh, uniquely named PostgreSQL database per test.
//!
//! Every database test in the project does
//!
//! ```no_run
//! let db = piwheels::testing::TestDb::new(); // schema 0.23, ready to use
//! let mut master = db.database();            // our data layer, as the user
//! let mut admin = db.admin();                // a superuser client on it
//! # let _ = (&mut master, &mut admin);
//! ```
//!
//! and the database and its role are dropped when `db` goes out of scope.
//!
//! * The cluster is reached through the admin DSN in `PIW_TEST_DSN`
//!   (default [`DEFAULT_ADMIN_DSN`]); it must be a superuser.
//! * Names are `piwtest_<pid>_<counter>_<nanos>` (databases) and the same
//!   with `_u` (roles), so tests may run in parallel threads and processes.
//! * Creating the schema takes a while (about 80 statements and their
//!   catalog work), so [`TestDb::new`] copies a template database that is
//!   made once per test process with our real initdb; the copy then gets
//!   its own role, with exactly the privileges initdb grants.
//!   [`TestDb::with_initdb`] runs initdb on the database itself instead (for
//!   tests of initdb's own result), and [`TestDb::empty`] leaves it empty.
//! * A process that dies without dropping (abort, kill) leaks its objects;
//!   the first `TestDb` of a later process drops every `piwtest_` database
//!   and role whose process is gone.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use postgres::config::Host;
use postgres::{Client, Config, NoTls};

use crate::initdb;

/// The admin DSN used when `PIW_TEST_DSN` is not set.
pub const DEFAULT_ADMIN_DSN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

const PREFIX: &str = "piwtest_";

/// The admin DSN for tests: `PIW_TEST_DSN` or [`DEFAULT_ADMIN_DSN`].
pub fn admin_dsn() -> String {
    std::env::var("PIW_TEST_DSN")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_ADMIN_DSN.to_owned())
}

fn admin_config() -> Config {
    crate::db::dsn::parse(&admin_dsn()).expect("PIW_TEST_DSN is not a valid DSN")
}

/// Writes a configuration back as a `key=value` DSN, with `dbname` and
/// `user` replaced.
fn dsn_for(base: &Config, dbname: &str, user: &str) -> String {
    fn q(v: &str) -> String {
        format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
    }
    let mut parts = Vec::new();
    match base.get_hosts().first() {
        Some(Host::Tcp(h)) => parts.push(format!("host={}", q(h))),
        Some(Host::Unix(p)) => parts.push(format!("host={}", q(&p.to_string_lossy()))),
        None => {}
    }
    if let Some(port) = base.get_ports().first() {
        parts.push(format!("port={port}"));
    }
    parts.push(format!("user={}", q(user)));
    parts.push(format!("dbname={}", q(dbname)));
    if let Some(pw) = base.get_password() {
        parts.push(format!("password={}", q(&String::from_utf8_lossy(pw))));
    }
    parts.join(" ")
}

/// The unprivileged role's DSN: always over TCP to the loopback address
/// with a password. A stock Debian cluster uses peer authentication on its
/// socket (the OS user would have to be the role) and password
/// authentication on 127.0.0.1, so this works there as well as with trust.
fn user_dsn_for(base: &Config, dbname: &str, user: &str, password: &str) -> String {
    let port = base.get_ports().first().copied().unwrap_or(5432);
    format!("host=127.0.0.1 port={port} user='{user}' dbname='{dbname}' password='{password}'")
}

fn connect_admin(dbname: Option<&str>) -> Client {
    let mut config = admin_config();
    if let Some(db) = dbname {
        config.dbname(db);
    }
    config.connect(NoTls).unwrap_or_else(|e| {
        panic!(
            "cannot connect to the test cluster ({}): {e}; set PIW_TEST_DSN",
            crate::db::dsn::describe(&config)
        )
    })
}

fn unique_name(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000_000_000)
        .unwrap_or(0);
    format!("{PREFIX}{}_{tag}{n}_{nanos}", std::process::id())
}

fn q(ident: &str) -> String {
    initdb::quote_ident(ident)
}

/// Drops leftovers of test processes that no longer run. Once per process.
fn collect_garbage(admin: &mut Client) {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    *done = true;
    let dead = |name: &str| -> bool {
        let pid = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('_').next())
            .and_then(|p| p.parse::<u32>().ok());
        match pid {
            Some(pid) if pid != std::process::id() => {
                !std::path::Path::new(&format!("/proc/{pid}")).exists()
            }
            _ => false,
        }
    };
    let pattern = format!("{}%", PREFIX.replace('_', "\\_"));
    if let Ok(rows) = admin.query(
        "SELECT datname::text FROM pg_database WHERE datname LIKE $1",
        &[&pattern],
    ) {
        for row in rows {
            let name: String = row.get(0);
            if dead(&name) {
                drop_database(admin, &name);
            }
        }
    }
    if let Ok(rows) = admin.query(
        "SELECT rolname::text FROM pg_roles WHERE rolname LIKE $1",
        &[&pattern],
    ) {
        for row in rows {
            let name: String = row.get(0);
            if dead(&name) {
                let _ = admin.batch_execute(&format!("DROP ROLE IF EXISTS {}", q(&name)));
            }
        }
    }
}

fn drop_database(admin: &mut Client, name: &str) {
    let _ = admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
        &[&name],
    );
    if admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", q(name)))
        .is_err()
    {
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {}", q(name)));
    }
}

/// The template made once per process: (database, role).
fn template() -> &'static (String, String) {
    static TEMPLATE: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let mut admin = connect_admin(None);
        collect_garbage(&mut admin);
        let db = unique_name("tpl");
        let role = format!("{db}_u");
        admin
            .batch_execute(&format!("CREATE ROLE {} LOGIN", q(&role)))
            .expect("create template role");
        admin
            .batch_execute(&format!("CREATE DATABASE {}", q(&db)))
            .expect("create template database");
        let mut client = connect_admin(Some(&db));
        let plan = initdb::plan(&initdb::DbVersion::Empty).expect("plan");
        initdb::execute(&mut client, &plan, &role, |_, _| {})
            .unwrap_or_else(|e| panic!("initdb on the template failed: {e}"));
        drop(client);
        (db, role)
    })
}

/// How the database of a [`TestDb`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Empty: no piwheels objects.
    Empty,
    /// Schema created by running our initdb on it.
    Initdb,
    /// Schema copied from the per-process template (fast).
    Template,
}

/// A fresh database and unprivileged role, dropped on `Drop`.
#[derive(Debug)]
pub struct TestDb {
    dbname: String,
    username: String,
    admin_dsn: String,
    user_dsn: String,
    /// The admin DSN of a cluster other than `PIW_TEST_DSN`'s.
    cluster: Option<String>,
}

impl TestDb {
    /// A database with the 0.23 schema (copied from the template) and its
    /// own role holding the privileges initdb grants.
    pub fn new() -> TestDb {
        TestDb::start(Start::Template)
    }

    /// A database on which our initdb itself created the schema.
    pub fn with_initdb() -> TestDb {
        TestDb::start(Start::Initdb)
    }

    /// An empty database (and its role), e.g. to test initdb.
    pub fn empty() -> TestDb {
        TestDb::start(Start::Empty)
    }

    /// A database made by our initdb on another cluster (a private server
    /// a test starts, restarts and stops), reached as the superuser of
    /// `admin_dsn`.
    pub fn on_cluster(admin_dsn: &str) -> TestDb {
        let base = crate::db::dsn::parse(admin_dsn).expect("not a valid DSN");
        let admin = base
            .connect(NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {admin_dsn}: {e}"));
        TestDb::create(base, admin, Start::Initdb, Some(admin_dsn.to_string()))
    }

    /// A database started as `how`.
    pub fn start(how: Start) -> TestDb {
        let mut admin = connect_admin(None);
        collect_garbage(&mut admin);
        TestDb::create(admin_config(), admin, how, None)
    }

    fn create(base: Config, mut admin: Client, how: Start, cluster: Option<String>) -> TestDb {
        let template = (how == Start::Template).then(template);
        let dbname = unique_name("");
        let username = format!("{dbname}_u");
        let password = format!("pw{}", unique_name("").trim_start_matches(PREFIX));
        let this = TestDb {
            admin_dsn: dsn_for(&base, &dbname, base.get_user().unwrap_or("postgres")),
            user_dsn: user_dsn_for(&base, &dbname, &username, &password),
            dbname,
            username,
            cluster,
        };
        admin
            .batch_execute(&format!(
                "CREATE ROLE {} LOGIN PASSWORD '{password}'",
                q(&this.username)
            ))
            .expect("create test role");
        let create = match template {
            Some((tpl, _)) => format!("CREATE DATABASE {} TEMPLATE {}", q(&this.dbname), q(tpl)),
            None => format!("CREATE DATABASE {}", q(&this.dbname)),
        };
        admin.batch_execute(&create).expect("create test database");
        drop(admin);
        let mut client = this.admin();
        match (how, template) {
            (Start::Template, Some((_, tpl_role))) => {
                // Database ACLs live in the shared catalog and are not copied
                // with the template; object ACLs are, but name the template's
                // role. Re-grant exactly what create_piwheels.sql grants.
                let (db, user, old) = (q(&this.dbname), q(&this.username), q(tpl_role));
                client
                    .batch_execute(&format!(
                        "REVOKE ALL PRIVILEGES ON DATABASE {db} FROM PUBLIC;
                         GRANT CONNECT, TEMP ON DATABASE {db} TO {user};
                         GRANT USAGE ON SCHEMA public TO {user};
                         GRANT SELECT ON ALL TABLES IN SCHEMA public TO {user};
                         GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {user};
                         REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {old};
                         REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM {old};
                         REVOKE ALL ON SCHEMA public FROM {old};"
                    ))
                    .expect("grant privileges on the copied database");
            }
            (Start::Initdb, _) => {
                let plan = initdb::plan(&initdb::DbVersion::Empty).expect("plan");
                initdb::execute(&mut client, &plan, &this.username, |_, _| {})
                    .unwrap_or_else(|e| panic!("initdb failed: {e}"));
            }
            _ => {}
        }
        this
    }

    /// The database's name.
    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// The unprivileged role's name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// A DSN for this database as the superuser of `PIW_TEST_DSN`.
    pub fn admin_dsn(&self) -> &str {
        &self.admin_dsn
    }

    /// A DSN for this database as the unprivileged role.
    pub fn user_dsn(&self) -> &str {
        &self.user_dsn
    }

    /// A superuser client on this database.
    pub fn admin(&self) -> Client {
        Client::connect(&self.admin_dsn, NoTls).expect("connect to the test database as admin")
    }

    /// A client on this database as the unprivileged role.
    pub fn user(&self) -> Client {
        Client::connect(&self.user_dsn, NoTls).expect("connect to the test database as user")
    }

    /// Our data layer on this database, as the unprivileged role.
    pub fn database(&self) -> crate::db::Database {
        crate::db::Database::connect(&self.user_dsn)
            .unwrap_or_else(|e| panic!("data layer cannot connect: {e}"))
    }
}

impl Default for TestDb {
    fn default() -> Self {
        TestDb::new()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let config = match &self.cluster {
            Some(dsn) => crate::db::dsn::parse(dsn).unwrap_or_else(|_| admin_config()),
            None => admin_config(),
        };
        let Ok(mut admin) = config.connect(NoTls) else {
            return;
        };
        drop_database(&mut admin, &self.dbname);
        let _ = admin.batch_execute(&format!("DROP ROLE IF EXISTS {}", q(&self.username)));
    }
}

/// A description of a database's schema from the catalogs, one line per
/// object, sorted: tables and their columns (types, defaults, nullability),
/// constraints, indexes, views, functions (full definitions and ACLs),
/// table ACLs and the database ACL. Two databases with equal snapshots have
/// the same schema. (Names of roles in ACLs are replaced by `<user>` when
/// they are `username`.)
pub fn schema_snapshot(client: &mut Client, username: &str) -> Vec<String> {
    let queries = [
        "SELECT 'column ' || c.relname || '.' || a.attname || ' #' || a.attnum || ' ' || \
                format_type(a.atttypid, a.atttypmod) || \
                CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END || \
                COALESCE(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '') \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'S') \
           AND a.attnum > 0 AND NOT a.attisdropped",
        "SELECT 'constraint ' || c.relname || '.' || k.conname || ' ' || \
                pg_get_constraintdef(k.oid) \
         FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'",
        "SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'",
        "SELECT 'view ' || viewname || ' ' || definition FROM pg_views \
         WHERE schemaname = 'public'",
        "SELECT 'function ' || pg_get_functiondef(p.oid) || ' ACL ' || \
                COALESCE(p.proacl::text, 'default') \
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = 'public'",
        "SELECT 'acl ' || c.relname || ' ' || COALESCE(c.relacl::text, 'default') \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'S')",
        "SELECT 'schema acl ' || COALESCE(nspacl::text, 'default') FROM pg_namespace \
         WHERE nspname = 'public'",
        "SELECT 'database acl ' || COALESCE(datacl::text, 'default') FROM pg_database \
         WHERE datname = current_database()",
        "SELECT 'type ' || t.typname || ' ' || t.typtype::text FROM pg_type t \
         JOIN pg_namespace n ON n.oid = t.typnamespace \
         WHERE n.nspname = 'public' AND t.typtype NOT IN ('b')",
    ];
    let dbname: String = client
        .query_one("SELECT current_database()::text", &[])
        .expect("current_database")
        .get(0);
    let owner: String = client
        .query_one("SELECT current_user::text", &[])
        .expect("current_user")
        .get(0);
    let mut out = Vec::new();
    for sql in queries {
        for row in client.query(sql, &[]).expect("catalog query") {
            let line: String = row.get(0);
            out.push(
                line.replace(username, "<user>")
                    .replace(&dbname, "<db>")
                    .replace(&owner, "<owner>"),
            );
        }
    }
    out.sort();
    out
}
