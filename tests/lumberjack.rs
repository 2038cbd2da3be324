//! lumberjack against a real PostgreSQL: one transaction per flush, the
//! database going away and coming back, the bounded buffer, pause, and a
//! row the server refuses.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use piwheels::db::{AccessLog, Database, Options};
use piwheels::master::lumberjack::{Flush, Hit, Lumberjack};
use piwheels::master::tasks::Stat;
use piwheels::protocol::{
    ClientInfo, DownloadState, LogMessage, PageHit, SearchState, WireMessage,
};
use piwheels::testing::TestDb;

fn quick() -> Options {
    Options {
        connect_timeout: Duration::from_secs(2),
        backoff_min: Duration::from_millis(200),
        backoff_max: Duration::from_millis(400),
        queue_timeout: Duration::from_secs(5),
    }
}

fn ts(i: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap() + chrono::TimeDelta::seconds(i64::from(i))
}

/// Five kinds of hit, in turn.
fn hit(i: u32) -> LogMessage {
    let host = format!("192.0.2.{}", i % 250);
    let page = |name: String| PageHit {
        name,
        host: host.clone(),
        timestamp: ts(i),
        user_agent: "mozilla".into(),
    };
    match i % 5 {
        0 => LogMessage::Download(DownloadState {
            filename: format!("pkg{i}-1.0-py3-none-any.whl"),
            host: host.clone(),
            timestamp: ts(i),
            client: ClientInfo {
                arch: Some("armv7l".into()),
                distro_name: Some("Raspbian GNU/Linux".into()),
                distro_version: Some("12".into()),
                os_name: Some("Linux".into()),
                os_version: Some("6.1.0-rpi7".into()),
                py_name: Some("CPython".into()),
                py_version: Some("3.11.2".into()),
                installer_name: Some("pip".into()),
                installer_version: Some("23.0.1".into()),
                setuptools_version: None,
            },
        }),
        1 => LogMessage::Search(SearchState {
            package: format!("pkg{i}"),
            host,
            timestamp: ts(i),
            client: ClientInfo::default(),
        }),
        2 => LogMessage::Project(page(format!("pkg{i}"))),
        3 => LogMessage::Json(page(format!("pkg{i}"))),
        _ => LogMessage::Page(page("home".into())),
    }
}

const TABLES: [&str; 5] = [
    "downloads",
    "searches",
    "project_page_hits",
    "project_json_downloads",
    "web_page_hits",
];

fn counts(db: &TestDb) -> [i64; 5] {
    let mut admin = db.admin();
    TABLES.map(|t| {
        admin
            .query_one(&format!("SELECT count(*) FROM {t}"), &[])
            .unwrap()
            .get(0)
    })
}

/// Ends every session of the test role and waits until they are gone.
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

fn connect_privilege(db: &TestDb, grant: bool) {
    let sql = if grant {
        format!(
            "GRANT CONNECT ON DATABASE \"{}\" TO \"{}\"",
            db.dbname(),
            db.username()
        )
    } else {
        format!(
            "REVOKE CONNECT ON DATABASE \"{}\" FROM \"{}\"",
            db.dbname(),
            db.username()
        )
    };
    db.admin().batch_execute(&sql).unwrap();
}

/// Calls `flush` whenever the lumberjack says it is due, sleeping until its
/// own deadline in between (as the poll loop would), until `done` or 10 s.
fn flush_until(lj: &mut Lumberjack, db: &mut Database, done: impl Fn(&Lumberjack) -> bool) {
    let give_up = Instant::now() + Duration::from_secs(10);
    while !done(lj) {
        let now = Instant::now();
        assert!(now < give_up, "gave up waiting; totals {:?}", lj.totals());
        match lj.next_deadline(now) {
            Some(t) if t > now => std::thread::sleep(t - now),
            Some(_) => {
                lj.flush(db, now);
            }
            None => panic!("nothing to flush but not done: {:?}", lj.totals()),
        }
    }
}

#[test]
fn a_flush_is_one_transaction_of_at_most_eight_round_trips() {
    let tdb = TestDb::new();
    let mut db = tdb.database();
    let mut lj = Lumberjack::new();
    for i in 0..1000 {
        lj.on_frame(&hit(i).encode());
    }
    assert_eq!(lj.pending(), 1000);
    let Flush::Written(report) = lj.flush(&mut db, Instant::now()) else {
        panic!("not written: {:?}", lj.totals())
    };
    assert_eq!(report.rows, 1000);
    assert_eq!(report.transactions, 1);
    // BEGIN, asynchronous commit (and the transaction id), one statement
    // per table, COMMIT.
    assert_eq!(report.round_trips, 8);
    assert_eq!(lj.pending(), 0);
    assert_eq!(counts(&tdb), [200; 5]);
    // The server agrees: every row of every table has the same xmin.
    let union = TABLES
        .iter()
        .map(|t| format!("SELECT xmin::text AS x FROM {t}"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let xids: i64 = tdb
        .admin()
        .query_one(&format!("SELECT count(DISTINCT x) FROM ({union}) u"), &[])
        .unwrap()
        .get(0);
    assert_eq!(xids, 1);

    // The columns got the right values.
    let row = tdb
        .admin()
        .query_one(
            "SELECT filename, host(accessed_by), accessed_at, arch, distro_name, \
             distro_version, os_name, os_version, py_name, py_version, installer_name, \
             installer_version, setuptools_version FROM downloads WHERE filename = $1",
            &[&"pkg5-1.0-py3-none-any.whl"],
        )
        .unwrap();
    let texts: Vec<Option<String>> = [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
        .iter()
        .map(|&i| row.get(i))
        .collect();
    assert_eq!(
        texts,
        [
            Some("pkg5-1.0-py3-none-any.whl"),
            Some("192.0.2.5"),
            Some("armv7l"),
            Some("Raspbian GNU/Linux"),
            Some("12"),
            Some("Linux"),
            Some("6.1.0-rpi7"),
            Some("CPython"),
            Some("3.11.2"),
            Some("pip"),
            Some("23.0.1"),
            None,
        ]
        .map(|s| s.map(str::to_owned))
    );
    assert_eq!(row.get::<_, chrono::NaiveDateTime>(2), ts(5).naive_utc());
    let ua: String = tdb
        .admin()
        .query_one("SELECT user_agent FROM web_page_hits LIMIT 1", &[])
        .unwrap()
        .get(0);
    assert_eq!(ua, "mozilla");

    // Only the kinds present cost a statement.
    for i in 0..10 {
        lj.on_frame(&hit(i * 5 + 4).encode());
    }
    let Flush::Written(report) = lj.flush(&mut db, Instant::now()) else {
        panic!()
    };
    assert_eq!((report.rows, report.round_trips), (10, 4));

    // Every minute: the downloads committed since the last report.
    let mut stats: Vec<Stat> = Vec::new();
    lj.report(&mut stats);
    lj.report(&mut stats);
    assert_eq!(stats, [Stat::Downloads(200), Stat::Downloads(0)]);
    assert_eq!(lj.totals().transactions, 2);
    assert_eq!(lj.totals().written_total(), 1010);
}

#[test]
fn while_the_database_is_down_hits_wait_up_to_the_bound() {
    let tdb = TestDb::new();
    let mut db = Database::connect_with(tdb.user_dsn(), quick()).unwrap();
    let mut lj = Lumberjack::with_capacity(300);
    connect_privilege(&tdb, false);
    kill_sessions(&tdb);

    for i in 0..200 {
        lj.on_frame(&hit(i).encode());
    }
    let now = Instant::now();
    let Flush::Failed { retry_at, .. } = lj.flush(&mut db, now) else {
        panic!("flushed with the database down")
    };
    assert!(retry_at > now);
    // Until the retry time, flushing costs nothing.
    assert_eq!(lj.flush(&mut db, Instant::now()), Flush::Waiting(retry_at));
    assert!(!lj.flush_due(Instant::now()));
    assert_eq!(lj.next_deadline(Instant::now()), Some(retry_at));

    // More hits than the buffer holds: the excess is dropped and counted.
    for i in 200..500 {
        lj.on_frame(&hit(i).encode());
    }
    assert_eq!(lj.pending(), 300);
    assert_eq!(lj.totals().dropped, 200);

    // Still down at the next attempt.
    flush_until(&mut lj, &mut db, |lj| lj.totals().failures >= 2);
    assert_eq!(counts(&tdb), [0; 5]);

    // Back: everything buffered is written, in one transaction.
    connect_privilege(&tdb, true);
    let before = lj.totals().transactions;
    flush_until(&mut lj, &mut db, |lj| lj.pending() == 0);
    assert_eq!(lj.totals().transactions, before + 1);
    assert_eq!(counts(&tdb), [60; 5]);
    let t = lj.totals();
    assert_eq!((t.received, t.written_total(), t.dropped), (500, 300, 200));
    let mut stats: Vec<Stat> = Vec::new();
    lj.report(&mut stats);
    assert_eq!(stats, [Stat::Downloads(60)]);
}

#[test]
fn a_connection_lost_mid_flush_keeps_the_hits() {
    let tdb = TestDb::new();
    let mut db = Database::connect_with(tdb.user_dsn(), quick()).unwrap();
    let mut lj = Lumberjack::new();
    for i in 0..50 {
        lj.on_frame(&hit(i).encode());
    }
    kill_sessions(&tdb);
    let flushed = lj.flush(&mut db, Instant::now());
    assert!(matches!(flushed, Flush::Failed { .. }), "{flushed:?}");
    assert_eq!(lj.pending(), 50);
    flush_until(&mut lj, &mut db, |lj| lj.pending() == 0);
    assert_eq!(counts(&tdb), [10; 5]);
}

#[test]
fn paused_means_accepting_but_not_writing() {
    let tdb = TestDb::new();
    let mut db = tdb.database();
    let mut lj = Lumberjack::with_capacity(20);
    lj.pause();
    for i in 0..25 {
        lj.on_frame(&hit(i).encode());
    }
    assert_eq!(lj.flush(&mut db, Instant::now()), Flush::Paused);
    assert_eq!(lj.next_deadline(Instant::now()), None);
    assert_eq!((lj.pending(), lj.totals().dropped), (20, 5));
    assert_eq!(counts(&tdb), [0; 5]);
    lj.resume();
    assert!(matches!(
        lj.flush(&mut db, Instant::now()),
        Flush::Written(_)
    ));
    assert_eq!(counts(&tdb), [4; 5]);
    // Shutdown writes even when paused.
    lj.pause();
    lj.on_frame(&hit(0).encode());
    lj.shutdown(&mut db);
    assert_eq!(counts(&tdb), [5, 4, 4, 4, 4]);
}

#[test]
fn a_row_the_server_refuses_is_found_and_dropped_alone() {
    let tdb = TestDb::new();
    let mut db = tdb.database();
    let mut lj = Lumberjack::new();
    for i in 0..10 {
        lj.on_frame(&hit(i).encode());
    }
    // Built by hand, past the checks: too long for downloads.filename.
    lj.on_hit(Hit::Download(AccessLog::new(
        "x".repeat(300),
        "192.0.2.1".parse().unwrap(),
        ts(0),
    )));
    for i in 10..20 {
        lj.on_frame(&hit(i).encode());
    }
    let Flush::Written(report) = lj.flush(&mut db, Instant::now()) else {
        panic!("{:?}", lj.totals())
    };
    assert_eq!((report.rows, report.refused), (20, 1));
    assert_eq!(lj.pending(), 0);
    assert_eq!(counts(&tdb), [4; 5]);
    assert_eq!(lj.totals().refused, 1);
}

#[test]
fn a_misconfigured_database_keeps_everything() {
    let tdb = TestDb::new();
    let mut db = tdb.database();
    let mut lj = Lumberjack::new();
    for i in 0..10 {
        lj.on_frame(&hit(i).encode());
    }
    let revoke = format!(
        "REVOKE EXECUTE ON FUNCTION log_page(TEXT, INET, TIMESTAMP, TEXT) FROM \"{}\"",
        tdb.username()
    );
    tdb.admin().batch_execute(&revoke).unwrap();
    assert!(matches!(
        lj.flush(&mut db, Instant::now()),
        Flush::Failed { .. }
    ));
    assert_eq!(lj.pending(), 10);
    assert_eq!(counts(&tdb), [0; 5]);
    let grant = revoke.replace("REVOKE", "GRANT").replace("FROM", "TO");
    tdb.admin().batch_execute(&grant).unwrap();
    flush_until(&mut lj, &mut db, |lj| lj.pending() == 0);
    assert_eq!(counts(&tdb), [2; 5]);
}
