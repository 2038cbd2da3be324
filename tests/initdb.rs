//! piw-initdb's library logic against a real PostgreSQL: create, no-op
//! re-run, the 0.22 -> 0.23 step, refusals, and all-or-nothing execution.

use std::borrow::Cow;

use piwheels::initdb::{self, DbVersion, InitDbError, Plan, Script};
use piwheels::testing::{TestDb, schema_snapshot};
use postgres::Client;

const DOWNGRADE_TO_022: &str = include_str!("data/downgrade_0.23_to_0.22.sql");

fn version(client: &mut Client) -> DbVersion {
    initdb::detect_version(client).unwrap()
}

fn public_tables(client: &mut Client) -> i64 {
    client
        .query_one(
            "SELECT COUNT(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v')",
            &[],
        )
        .unwrap()
        .get(0)
}

/// A 0.22 database: created at 0.23 by our initdb, then the 0.23 change
/// reversed by the fixture.
fn database_at_022() -> TestDb {
    let db = TestDb::with_initdb();
    let mut admin = db.admin();
    for stmt in initdb::split_statements(DOWNGRADE_TO_022) {
        admin
            .batch_execute(&initdb::substitute(stmt, db.username(), db.dbname()))
            .unwrap();
    }
    assert_eq!(version(&mut admin), DbVersion::Version("0.22".into()));
    db
}

#[test]
fn creates_the_schema_in_an_empty_database() {
    let db = TestDb::empty();
    let mut admin = db.admin();
    assert_eq!(version(&mut admin), DbVersion::Empty);
    let plan = initdb::prepare(&mut admin, db.username()).unwrap();
    assert_eq!(plan.from, DbVersion::Empty);
    assert_eq!(plan.to, "0.23");
    assert!(plan.describe().contains("created"), "{}", plan.describe());
    let mut calls = Vec::new();
    initdb::execute(&mut admin, &plan, db.username(), |done, total| {
        calls.push((done, total))
    })
    .unwrap();
    assert!(calls.len() > 50, "one progress call per statement");
    assert_eq!(calls.last().map(|c| c.0), calls.last().map(|c| c.1));
    assert_eq!(version(&mut admin), DbVersion::Version("0.23".into()));
    // The master's role can now use it.
    let mut master = db.database();
    assert_eq!(master.get_version().unwrap(), "0.23");
}

#[test]
fn running_again_is_a_no_op() {
    let db = TestDb::with_initdb();
    let mut admin = db.admin();
    let before = schema_snapshot(&mut admin, db.username());
    let plan = initdb::prepare(&mut admin, db.username()).unwrap();
    assert!(plan.is_noop());
    assert!(plan.describe().contains("current version"));
    initdb::execute(&mut admin, &plan, db.username(), |_, _| {
        panic!("nothing should run")
    })
    .unwrap();
    assert_eq!(schema_snapshot(&mut admin, db.username()), before);
}

#[test]
fn template_copies_match_what_initdb_makes() {
    // testing::TestDb::new() copies a template and re-grants to its own
    // role; it must be indistinguishable from running initdb.
    let fresh = TestDb::with_initdb();
    let copy = TestDb::new();
    let a = schema_snapshot(&mut fresh.admin(), fresh.username());
    let b = schema_snapshot(&mut copy.admin(), copy.username());
    assert_eq!(a, b);
    // And the snapshot does look at privileges.
    assert!(
        a.iter()
            .any(|l| l.starts_with("acl packages ") && l.contains("<user>=r/"))
    );
    assert!(
        a.iter()
            .any(|l| l.starts_with("database acl ") && l.contains("<user>=Tc/"))
    );
}

#[test]
fn upgrades_022_to_023_and_ends_with_the_created_schema() {
    let fresh = TestDb::with_initdb();
    let want = schema_snapshot(&mut fresh.admin(), fresh.username());

    let db = database_at_022();
    let mut admin = db.admin();
    let old = schema_snapshot(&mut admin, db.username());
    assert_ne!(old, want, "the fixture must really change something");

    let plan = initdb::prepare(&mut admin, db.username()).unwrap();
    assert_eq!(plan.from, DbVersion::Version("0.22".into()));
    assert_eq!(plan.scripts.len(), 1);
    assert_eq!(plan.scripts[0].name, "update_piwheels_0.22_to_0.23.sql");
    assert!(
        plan.describe()
            .contains("upgraded from version 0.22 to 0.23")
    );
    initdb::execute(&mut admin, &plan, db.username(), |_, _| {}).unwrap();

    assert_eq!(version(&mut admin), DbVersion::Version("0.23".into()));
    assert_eq!(schema_snapshot(&mut admin, db.username()), want);
}

#[test]
fn upgrade_keeps_data_and_adds_pip_dependencies() {
    let db = database_at_022();
    let mut admin = db.admin();
    admin
        .batch_execute(
            "INSERT INTO packages (package) VALUES ('foo');
             INSERT INTO versions (package, version) VALUES ('foo', '1.0');
             INSERT INTO build_abis (abi_tag) VALUES ('cp37m');
             INSERT INTO builds (build_id, package, version, built_by, duration, abi_tag)
                 VALUES (1, 'foo', '1.0', 1, '1 minute', 'cp37m');
             INSERT INTO files VALUES ('foo-1.0-py3-none-any.whl', 1, 10, repeat('a', 64),
                 'foo', '1.0', 'py3', 'none', 'any', NULL, '/simple');
             INSERT INTO dependencies VALUES ('foo-1.0-py3-none-any.whl', 'pip', 'bar');",
        )
        .unwrap();
    let json = |c: &mut Client| -> String {
        c.query_one("SELECT get_project_data('foo')::text", &[])
            .unwrap()
            .get(0)
    };
    assert!(!json(&mut admin).contains("pip_dependencies"));
    let plan = initdb::prepare(&mut admin, db.username()).unwrap();
    initdb::execute(&mut admin, &plan, db.username(), |_, _| {}).unwrap();
    let after = json(&mut admin);
    assert!(
        after.contains("\"pip_dependencies\" : [\"bar\"]"),
        "{after}"
    );
}

#[test]
fn refuses_a_connection_that_is_not_a_superuser() {
    let db = TestDb::with_initdb();
    let mut user = db.user();
    let err = initdb::prepare(&mut user, db.username()).unwrap_err();
    assert!(matches!(err, InitDbError::NotSuperuser(ref u) if u == db.username()));
    assert!(err.to_string().contains("superuser"));
}

#[test]
fn refuses_a_superuser_target() {
    let db = TestDb::empty();
    let mut admin = db.admin();
    let me: String = admin
        .query_one("SELECT current_user::text", &[])
        .unwrap()
        .get(0);
    let err = initdb::prepare(&mut admin, &me).unwrap_err();
    assert!(matches!(err, InitDbError::SuperuserTarget(_)), "{err}");
    assert_eq!(version(&mut admin), DbVersion::Empty);
}

#[test]
fn refuses_a_missing_target() {
    let db = TestDb::empty();
    let mut admin = db.admin();
    let err = initdb::prepare(&mut admin, "piwtest_no_such_role").unwrap_err();
    assert!(matches!(err, InitDbError::MissingUser(_)), "{err}");
    assert!(err.to_string().contains("does not exist"));
}

#[test]
fn refuses_a_newer_database() {
    let db = TestDb::with_initdb();
    let mut admin = db.admin();
    admin
        .batch_execute("UPDATE configuration SET version = '0.24'")
        .unwrap();
    let err = initdb::prepare(&mut admin, db.username()).unwrap_err();
    assert!(
        matches!(err, InitDbError::Newer(ref v) if v == "0.24"),
        "{err}"
    );
    assert!(err.to_string().contains("downgrade"));
}

#[test]
fn refuses_databases_older_than_022_with_advice() {
    let db = TestDb::with_initdb();
    let mut admin = db.admin();
    admin
        .batch_execute("UPDATE configuration SET version = '0.17'")
        .unwrap();
    let err = initdb::prepare(&mut admin, db.username()).unwrap_err();
    assert!(matches!(err, InitDbError::TooOld(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("0.17") && msg.contains("piwheels' own piw-initdb"),
        "{msg}"
    );

    // Tables without a configuration table: before 0.6.
    let old = TestDb::empty();
    let mut admin = old.admin();
    admin
        .batch_execute("CREATE TABLE packages (package VARCHAR(200) PRIMARY KEY)")
        .unwrap();
    assert_eq!(version(&mut admin), DbVersion::Legacy);
    assert!(matches!(
        initdb::prepare(&mut admin, old.username()),
        Err(InitDbError::TooOld(DbVersion::Legacy))
    ));
}

#[test]
fn a_failure_midway_through_create_changes_nothing() {
    let db = TestDb::empty();
    let mut admin = db.admin();
    let acl_before: Option<String> = admin
        .query_one(
            "SELECT datacl::text FROM pg_database WHERE datname = current_database()",
            &[],
        )
        .unwrap()
        .get(0);
    let mut plan = initdb::plan(&DbVersion::Empty).unwrap();
    plan.scripts.push(Script {
        name: Cow::Borrowed("broken.sql"),
        sql: Cow::Borrowed("CREATE TABLE extra (a int);\nSELECT 1 / 0;\n"),
    });
    let mut done = 0;
    let err = initdb::execute(&mut admin, &plan, db.username(), |d, _| done = d).unwrap_err();
    assert!(done > 50, "the create script ran before the failure");
    match &err {
        InitDbError::Statement { script, index, .. } => {
            assert_eq!(script, "broken.sql");
            assert_eq!(*index, 1);
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains("nothing was changed"));
    assert_eq!(version(&mut admin), DbVersion::Empty);
    assert_eq!(public_tables(&mut admin), 0);
    let acl_after: Option<String> = admin
        .query_one(
            "SELECT datacl::text FROM pg_database WHERE datname = current_database()",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        acl_before, acl_after,
        "the REVOKE on the database was undone"
    );
}

#[test]
fn a_failure_midway_through_an_upgrade_changes_nothing() {
    let db = database_at_022();
    let mut admin = db.admin();
    let before = schema_snapshot(&mut admin, db.username());
    let mut plan = initdb::prepare(&mut admin, db.username()).unwrap();
    plan.scripts.push(Script {
        name: Cow::Borrowed("broken.sql"),
        sql: Cow::Borrowed("DROP TABLE no_such_table;"),
    });
    assert!(initdb::execute(&mut admin, &plan, db.username(), |_, _| {}).is_err());
    assert_eq!(version(&mut admin), DbVersion::Version("0.22".into()));
    assert_eq!(schema_snapshot(&mut admin, db.username()), before);
}

#[test]
fn scripts_may_not_control_the_transaction() {
    let db = TestDb::empty();
    let mut admin = db.admin();
    let plan = Plan {
        from: DbVersion::Empty,
        to: "0.23".into(),
        scripts: vec![Script {
            name: Cow::Borrowed("commits.sql"),
            sql: Cow::Borrowed("CREATE TABLE a (b int);\nCOMMIT;\n"),
        }],
    };
    let err = initdb::execute(&mut admin, &plan, db.username(), |_, _| {}).unwrap_err();
    assert!(
        matches!(err, InitDbError::TransactionControl { .. }),
        "{err}"
    );
    assert_eq!(public_tables(&mut admin), 0);
}

#[test]
fn the_script_refuses_to_run_by_hand_on_the_wrong_version() {
    // The upgrade script's own guard (for someone running it with psql).
    let db = TestDb::with_initdb();
    let mut admin = db.admin();
    let script = initdb::UPGRADE_SCRIPTS[0].2;
    let first = initdb::split_statements(script)[0];
    let err = admin.batch_execute(first).unwrap_err();
    assert!(
        err.as_db_error().unwrap().message().contains("0.22"),
        "{err}"
    );
}

#[test]
fn connect_reports_a_missing_database() {
    let base = piwheels::testing::admin_dsn();
    let mut config = piwheels::db::dsn::parse(&base).unwrap();
    config.dbname("piwtest_surely_missing_db");
    // Rebuild a DSN by hand for connect(): key=value form.
    let host = match &config.get_hosts()[0] {
        postgres::config::Host::Tcp(h) => h.clone(),
        postgres::config::Host::Unix(p) => p.display().to_string(),
    };
    let dsn = format!(
        "host={host} port={} user={} dbname=piwtest_surely_missing_db",
        config.get_ports().first().unwrap_or(&5432),
        config.get_user().unwrap()
    );
    let Err(err) = initdb::connect(&dsn) else {
        panic!("connected to a missing database")
    };
    assert!(matches!(err, InitDbError::Connect(_)));
    assert!(err.to_string().contains("createdb"), "{err}");
}
