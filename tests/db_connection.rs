//! Connecting, refusing, losing the server and getting it back.

use std::time::{Duration, Instant};

use piwheels::db::{Database, DbError, Options};
use piwheels::testing::{TestDb, admin_dsn};
use postgres::config::Host;

fn quick() -> Options {
    Options {
        connect_timeout: Duration::from_secs(2),
        backoff_min: Duration::from_millis(300),
        backoff_max: Duration::from_secs(2),
        queue_timeout: Duration::from_millis(300),
    }
}

/// Ends every session of the test role (as a server restart would) and
/// waits until the server has let them go.
fn kill_sessions(db: &TestDb) {
    let mut admin = db.admin();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE usename = $1 AND pid <> pg_backend_pid()",
            &[&db.username()],
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = $1",
            &[&db.username()],
        )
        .unwrap()
        .get::<_, i64>(0)
        > 0
    {
        assert!(Instant::now() < deadline, "sessions did not end");
        std::thread::yield_now();
    }
}

#[test]
fn refuses_a_schema_of_another_level() {
    let db = TestDb::new();
    db.admin()
        .batch_execute("UPDATE configuration SET version = '0.22'")
        .unwrap();
    let err = Database::connect(db.user_dsn()).unwrap_err();
    assert!(matches!(err, DbError::Version { found: Some(ref v) } if v == "0.22"));
    let msg = err.to_string();
    assert!(
        msg.contains("0.22") && msg.contains("0.23") && msg.contains("piw-initdb"),
        "{msg}"
    );

    let empty = TestDb::empty();
    let err = Database::connect(empty.user_dsn()).unwrap_err();
    assert!(matches!(err, DbError::Version { found: None }), "{err}");
}

#[test]
fn a_dsn_without_host_uses_the_local_socket() {
    let base = piwheels::db::dsn::parse(&admin_dsn()).unwrap();
    let local = match &base.get_hosts()[0] {
        Host::Unix(_) => true,
        Host::Tcp(h) => h == "127.0.0.1" || h == "localhost" || h == "::1",
    };
    if !local {
        eprintln!("skipped: the test cluster is not on this machine");
        return;
    }
    let db = TestDb::new();
    let port = base.get_ports().first().copied().unwrap_or(5432);
    for dsn in [
        format!("postgres://{}@/{}", db.username(), db.dbname()),
        format!(
            "postgresql:///{}?user={}&port={port}",
            db.dbname(),
            db.username()
        ),
    ] {
        let config = piwheels::db::dsn::parse(&dsn).unwrap();
        assert!(matches!(config.get_hosts()[0], Host::Unix(_)), "{dsn}");
        let mut master = Database::connect(&dsn).unwrap_or_else(|e| panic!("{dsn}: {e}"));
        assert_eq!(master.get_version().unwrap(), "0.23");
        assert!(master.describe().contains(db.dbname()));
    }
}

#[test]
fn a_broken_connection_is_replaced_for_safe_calls() {
    let db = TestDb::new();
    let mut master = Database::connect_with(db.user_dsn(), quick()).unwrap();
    master.set_pypi_serial(10).unwrap();
    kill_sessions(&db);
    // A read: retried on a new connection, the caller sees nothing.
    assert_eq!(master.get_pypi_serial().unwrap(), 10);
    kill_sessions(&db);
    // A streamed read that broke before its first row: retried too.
    let n = master.get_build_queue(10, |_, _, _| {}).unwrap();
    assert_eq!(n, 0);
    kill_sessions(&db);
    // A write that sets a value: safe to repeat.
    master.skip_package("nothing", "x").unwrap();
    assert!(master.is_connected());
}

#[test]
fn a_broken_connection_is_reported_for_unsafe_calls() {
    let db = TestDb::new();
    let mut master = Database::connect_with(db.user_dsn(), quick()).unwrap();
    assert!(master.add_new_package("first", "", "").unwrap());
    kill_sessions(&db);
    let err = master.add_new_package("second", "", "").unwrap_err();
    assert!(matches!(err, DbError::Lost(_)), "{err}");
    assert!(err.is_unavailable());
    assert!(err.to_string().contains("may not have been applied"));
    // The next call reconnects at once.
    assert!(master.test_package("first").unwrap());
    // The caller decides; here it repeats the insert.
    let _ = master.add_new_package("second", "", "").unwrap();
    assert!(master.test_package("second").unwrap());
}

#[test]
fn while_the_server_is_unreachable_calls_fail_fast_and_back_off() {
    let db = TestDb::new();
    let mut master = Database::connect_with(db.user_dsn(), quick()).unwrap();
    let grant = |sql: &str| {
        db.admin()
            .batch_execute(&format!(
                "{sql} CONNECT ON DATABASE \"{}\" {} \"{}\"",
                db.dbname(),
                if sql == "GRANT" { "TO" } else { "FROM" },
                db.username()
            ))
            .unwrap()
    };
    // Make reconnection impossible, then break the connection.
    grant("REVOKE");
    kill_sessions(&db);

    let err = master.get_pypi_serial().unwrap_err();
    match &err {
        DbError::Unavailable { retry_in, .. } => {
            assert!(*retry_in <= Duration::from_millis(300))
        }
        other => panic!("unexpected {other}"),
    }
    assert!(!master.is_connected());
    assert!(master.next_attempt().is_some());

    // Until the retry time, calls return at once without trying.
    let start = Instant::now();
    for _ in 0..100 {
        assert!(matches!(
            master.get_statistics(),
            Err(DbError::Unavailable { .. })
        ));
    }
    assert!(
        start.elapsed() < Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );

    // The next attempt fails too and doubles the wait.
    std::thread::sleep(Duration::from_millis(350));
    match master.get_pypi_serial() {
        Err(DbError::Unavailable { retry_in, .. }) => {
            assert!(retry_in > Duration::from_millis(300), "{retry_in:?}")
        }
        other => panic!("unexpected {other:?}"),
    }

    // The server is back: the first call after the wait reconnects.
    grant("GRANT");
    std::thread::sleep(Duration::from_millis(650));
    assert_eq!(master.get_pypi_serial().unwrap(), 0);
    assert!(master.is_connected());
}

#[test]
fn the_build_queue_has_a_statement_timeout() {
    let db = TestDb::new();
    let mut master = Database::connect_with(db.user_dsn(), quick()).unwrap();
    let mut admin = db.admin();
    let mut tx = admin.transaction().unwrap();
    tx.batch_execute("LOCK TABLE versions IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let start = Instant::now();
    let err = master.get_build_queue(10, |_, _, _| {}).unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    assert!(start.elapsed() < Duration::from_secs(5));
    tx.rollback().unwrap();
    // The connection is still good.
    assert_eq!(master.get_build_queue(10, |_, _, _| {}).unwrap(), 0);
    assert!(master.cancel_token().is_some());
}

#[test]
fn an_unreachable_server_at_start_is_an_error() {
    let err = Database::connect_with("host=127.0.0.1 port=1 user=nobody dbname=nothing", quick())
        .unwrap_err();
    assert!(matches!(err, DbError::Unavailable { .. }), "{err}");
}

#[test]
fn a_batch_commits_all_or_nothing() {
    let db = TestDb::new();
    let mut master = Database::connect_with(db.user_dsn(), quick()).unwrap();
    // Every call in the batch takes effect together.
    master
        .transaction(|t| {
            t.add_new_package("alpha", "", "")?;
            t.add_new_package_version("alpha", "1.0", None, "")?;
            t.set_pypi_serial(42)?;
            Ok(())
        })
        .unwrap();
    assert!(master.test_package_version("alpha", "1.0").unwrap());
    assert_eq!(master.get_pypi_serial().unwrap(), 42);

    // An error from the closure rolls everything back.
    let err = master
        .transaction(|t| {
            t.add_new_package("beta", "", "")?;
            t.set_pypi_serial(50)?;
            Err::<(), _>(DbError::Data("stop".into()))
        })
        .unwrap_err();
    assert!(matches!(err, DbError::Data(_)));
    assert!(!master.test_package("beta").unwrap());
    assert_eq!(master.get_pypi_serial().unwrap(), 42);

    // A statement the server refuses (the serial may not go backwards)
    // fails the batch and undoes the earlier calls in it.
    let err = master
        .transaction(|t| {
            t.add_new_package("gamma", "", "")?;
            t.set_pypi_serial(1)
        })
        .unwrap_err();
    assert!(matches!(err, DbError::Query(_)), "{err}");
    assert!(!master.test_package("gamma").unwrap());

    // Calls that use their own transaction work inside a batch too.
    let (stats, n) = master
        .transaction(|t| Ok((t.get_statistics()?, t.get_build_queue(10, |_, _, _| {})?)))
        .unwrap();
    assert_eq!(stats.files_count, 0);
    assert_eq!(n, 0);
    assert!(matches!(
        master.transaction(|t| t.transaction(|_| Ok(()))),
        Err(DbError::Data(_))
    ));
}

#[test]
fn a_batch_that_loses_its_connection_applies_nothing_and_does_not_reconnect_inside() {
    let db = TestDb::new();
    let mut master = Database::connect_with(db.user_dsn(), quick()).unwrap();
    let err = master
        .transaction(|t| {
            t.add_new_package("delta", "", "")?;
            kill_sessions(&db);
            // Neither retried nor run outside the batch on a new connection.
            t.add_new_package("epsilon", "", "")?;
            Ok(())
        })
        .unwrap_err();
    assert!(
        err.is_unavailable() || matches!(err, DbError::Data(_)),
        "{err}"
    );
    // Afterwards the connection is replaced and nothing was applied.
    assert!(!master.test_package("delta").unwrap());
    assert!(!master.test_package("epsilon").unwrap());
}
