//! cloud_gazer against a real PostgreSQL (TestDb) and the fake PyPI over
//! real HTTP on loopback: a scripted day of events with a restart in the
//! middle, every misbehaviour, database failures, dev mode and pausing.
//! Nothing sleeps to synchronise: the harness waits in zmq::poll with
//! deadlines.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime};
use piwheels::db::Database;
use piwheels::fake_pypi::harness::{run_to_serial, run_until};
use piwheels::fake_pypi::{FakePypi, Misbehaviour};
use piwheels::master::cloud_gazer::{CloudGazer, CloudGazerConfig};
use piwheels::master::tasks::{Skip, WebRequest};
use piwheels::testing::TestDb;

const LONG: Duration = Duration::from_secs(30);

fn config(fake: &FakePypi) -> CloudGazerConfig {
    let mut c = CloudGazerConfig::new(&fake.xmlrpc_url(), &fake.json_url());
    c.poll_interval = Duration::from_millis(20);
    c.client.timeout = Duration::from_secs(5);
    c
}

fn start(c: CloudGazerConfig, db: &mut Database) -> CloudGazer {
    CloudGazer::new(c, &zmq::Context::new(), db).expect("cloud_gazer starts")
}

fn ts(t: i64) -> NaiveDateTime {
    DateTime::from_timestamp(t, 0).unwrap().naive_utc()
}

fn epoch() -> NaiveDateTime {
    ts(0)
}

type PackageRow = (String, String, String);
type VersionRow = (String, String, NaiveDateTime, String, bool);
type NameRow = (String, String, NaiveDateTime);

fn packages(admin: &mut postgres::Client) -> Vec<PackageRow> {
    admin
        .query(
            "SELECT package::text, skip::text, description::text FROM packages ORDER BY package",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

fn versions(admin: &mut postgres::Client) -> Vec<VersionRow> {
    admin
        .query(
            "SELECT package::text, version::text, released, skip::text, yanked FROM versions \
             ORDER BY package, version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

fn names(admin: &mut postgres::Client) -> Vec<NameRow> {
    admin
        .query(
            "SELECT package::text, name::text, seen FROM package_names ORDER BY package, name",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

fn serial(admin: &mut postgres::Client) -> i64 {
    admin
        .query_one("SELECT pypi_serial FROM configuration", &[])
        .unwrap()
        .get(0)
}

fn s(v: &str) -> String {
    v.to_owned()
}

#[test]
fn a_day_of_events_with_a_restart_in_the_middle() {
    let tdb = TestDb::new();
    let mut admin = tdb.admin();
    let mut db = tdb.database();
    let fake = FakePypi::start();

    // ---- the morning ----------------------------------------------------
    let t_foo = fake.now();
    fake.add_release("Foo_Bar", "1.0");
    fake.set_summary("Foo_Bar", Some("The foo bar"));
    fake.advance(60);
    let t_bin = fake.now();
    fake.add_binary_release("binonly", "0.1");
    fake.advance(60);
    let t_baz = fake.now();
    fake.add_release("baz", "2.0");
    fake.set_summary("baz", Some(&"z".repeat(250)));
    fake.advance(60);
    // not removals under 0.23's end-anchored pattern
    fake.add_event("Foo_Bar", None, "remove Owner alice");
    fake.add_event("Foo_Bar", Some("1.0"), "remove file foo_bar-1.0.tar.gz");
    fake.yank("Foo_Bar", "1.0");
    fake.advance(60);
    // an unknown action, and events piwheels cannot store
    fake.add_event("foo-bar", Some("1.0"), "frobnicate the release");
    fake.add_event(
        "evil\u{1}name",
        Some("1.0"),
        "add source file evil-1.0.tar.gz",
    );
    fake.add_event(&"x".repeat(10_000), Some("1.0"), "add source file x.tar.gz");
    fake.add_event(
        "okname",
        Some(&"1".repeat(201)),
        "add source file okname.tar.gz",
    );
    let h1 = fake.flush_window();

    let mut web1: Vec<WebRequest> = Vec::new();
    let mut skip1: Vec<Skip> = Vec::new();
    let mut g1 = start(config(&fake), &mut db);
    assert!(
        run_to_serial(&mut g1, &mut db, &mut web1, &mut skip1, h1, LONG),
        "{g1:?}"
    );
    assert_eq!(fake.sinces()[0], 0, "an empty database reads from serial 0");
    assert_eq!(serial(&mut admin), h1);
    let stats = g1.stats();
    assert_eq!((stats.applied, stats.rejected), (10, 3), "{stats:?}");
    assert!(
        skip1.is_empty(),
        "removing an owner or a file is not a removal: {skip1:?}"
    );
    assert!(web1.contains(&WebRequest::Both(s("foo-bar"))));
    assert!(web1.contains(&WebRequest::Both(s("binonly"))));
    assert_eq!(
        versions(&mut admin),
        vec![
            (s("baz"), s("2.0"), ts(t_baz), s(""), false),
            (s("binonly"), s("0.1"), ts(t_bin), s("binary only"), false),
            (s("foo-bar"), s("1.0"), ts(t_foo), s(""), true),
        ]
    );
    g1.shutdown();

    // ---- the afternoon, seen by a new cloud_gazer (a master restart) -----
    let t_baz21 = fake.now();
    fake.add_release("Baz", "2.1");
    fake.advance(60);
    fake.add_source("binonly", "0.1");
    fake.advance(60);
    let t_foo11 = fake.now();
    fake.add_release("foo.bar", "1.1");
    fake.advance(60);
    let t_unyank = fake.now();
    fake.unyank("Foo_Bar", "1.0");
    fake.yank("baz", "2.0");
    fake.advance(60);
    fake.remove_release("baz", "2.1");
    fake.create_project("doomed");
    fake.add_release("doomed", "1.0");
    fake.advance(60);
    fake.remove_project("doomed");
    let h2 = fake.flush_window();

    let calls_before = fake.sinces().len();
    let mut web2: Vec<WebRequest> = Vec::new();
    let mut skip2: Vec<Skip> = Vec::new();
    let mut g2 = start(config(&fake), &mut db);
    assert_eq!(g2.stored_serial(), h1);
    assert!(
        run_to_serial(&mut g2, &mut db, &mut web2, &mut skip2, h2, LONG),
        "{g2:?}"
    );
    // resumed from the stored serial exactly: read from it less the margin,
    // and applied the afternoon's events only (none of the morning's was
    // seen again, not even the rejected ones)
    assert_eq!(fake.sinces()[calls_before], h1 - 2000);
    let stats = g2.stats();
    assert_eq!((stats.applied, stats.rejected), (9, 0), "{stats:?}");
    assert_eq!(
        web2[..6],
        [
            WebRequest::Both(s("baz")),
            WebRequest::Project(s("binonly")),
            WebRequest::Both(s("foo-bar")),
            WebRequest::Both(s("doomed")),
            WebRequest::DelVer(s("baz"), s("2.1")),
            WebRequest::DelPkg(s("doomed")),
        ]
    );
    let later: HashSet<String> = web2[6..].iter().map(|r| format!("{r:?}")).collect();
    assert_eq!(
        later,
        [
            r#"Project("baz")"#.to_owned(),
            r#"Project("foo-bar")"#.to_owned()
        ]
        .into_iter()
        .collect(),
        "descriptions are stored after the events, with a project rewrite: {web2:?}"
    );
    assert_eq!(
        skip2,
        vec![
            Skip::Version(s("baz"), s("2.1")),
            Skip::Package(s("doomed"))
        ]
    );
    g2.shutdown();

    // ---- the database at the end of the day -----------------------------
    assert_eq!(serial(&mut admin), h2);
    let cut = format!("{}…", "z".repeat(199));
    assert_eq!(
        packages(&mut admin),
        vec![
            (s("baz"), s(""), cut),
            (s("binonly"), s(""), s("")),
            (s("foo-bar"), s(""), s("The foo bar")),
        ]
    );
    assert_eq!(
        versions(&mut admin),
        vec![
            (s("baz"), s("2.0"), ts(t_baz), s(""), true),
            (s("binonly"), s("0.1"), ts(t_bin), s(""), false),
            (s("foo-bar"), s("1.0"), ts(t_foo), s(""), false),
            (s("foo-bar"), s("1.1"), ts(t_foo11), s(""), false),
        ]
    );
    assert_eq!(
        names(&mut admin),
        vec![
            (s("baz"), s("Baz"), ts(t_baz21)),
            (s("baz"), s("baz"), epoch()),
            (s("foo-bar"), s("Foo_Bar"), ts(t_unyank)),
            (s("foo-bar"), s("foo-bar"), epoch()),
            (s("foo-bar"), s("foo.bar"), ts(t_foo11)),
        ]
    );
}

/// A gazer that has read everything so far, with short timeouts.
fn settled(fake: &FakePypi, tdb: &TestDb) -> (Database, CloudGazer) {
    let mut db = tdb.database();
    fake.add_release("first", "1.0");
    let h = fake.flush_window();
    let mut c = config(fake);
    c.client.timeout = Duration::from_millis(300);
    c.client.total_timeout = Duration::from_secs(3);
    let mut g = start(c, &mut db);
    assert!(run_to_serial(
        &mut g,
        &mut db,
        &mut Vec::new(),
        &mut Vec::new(),
        h,
        LONG
    ));
    (db, g)
}

#[test]
fn every_misbehaviour_is_survived_and_the_next_poll_recovers() {
    let tdb = TestDb::new();
    let mut admin = tdb.admin();
    let fake = FakePypi::start();
    let (mut db, mut g) = settled(&fake, &tdb);
    // each misbehaviour, and what the logged reason must say
    let cases = [
        (Misbehaviour::Status(500), "HTTP status 500"),
        (Misbehaviour::Status(503), "HTTP status 503"),
        (Misbehaviour::Status(404), "HTTP status 404"),
        (Misbehaviour::RateLimited, "rate limit"),
        (
            Misbehaviour::Fault(-32500, "HTTPTooManyRequests".into()),
            "rate limit",
        ),
        (
            Misbehaviour::Fault(1, "<boom>".into()),
            "fault 1 (HTTP 200): <boom>",
        ),
        (Misbehaviour::Garbage, "malformed"),
        (Misbehaviour::Truncated, "reading the response"),
        (Misbehaviour::Stall(Duration::from_secs(30)), "timed out"),
        (
            Misbehaviour::Body(
                "<methodResponse><params><param><value><array><data>\
                 <value><array><data><value>a</value></data></array></value>\
                 </data></array></value></param></params></methodResponse>"
                    .into(),
            ),
            "expected 5 items",
        ),
        (Misbehaviour::Body(String::new()), "empty"),
    ];
    for (i, (m, reason)) in cases.into_iter().enumerate() {
        let name = format!("pkg{i}");
        let before = g.stats();
        let stored = g.stored_serial();
        fake.misbehave(m.clone());
        fake.add_release(&name, "1.0");
        let h = fake.flush_window();
        let (mut web, mut skip) = (Vec::<WebRequest>::new(), Vec::<Skip>::new());
        let failed = run_until(&mut g, &mut db, &mut web, &mut skip, LONG, |g, _| {
            g.stats().fetch_failures > before.fetch_failures
        });
        assert!(failed, "{m:?} was not noticed");
        let logged = g.stats().last_error.unwrap_or_default();
        assert!(logged.contains(reason), "{m:?}: {logged}");
        assert_eq!(g.stored_serial(), stored, "{m:?} moved the serial");
        assert_eq!(serial(&mut admin), stored, "{m:?} moved the stored serial");
        assert!(
            !packages(&mut admin).iter().any(|p| p.0 == name),
            "{m:?} applied events"
        );
        assert!(web.is_empty() && skip.is_empty(), "{m:?}");
        // the next poll recovers
        assert!(
            run_to_serial(&mut g, &mut db, &mut web, &mut skip, h, LONG),
            "{m:?}"
        );
        assert!(packages(&mut admin).iter().any(|p| p.0 == name), "{m:?}");
        assert_eq!(serial(&mut admin), h);
    }
    let stats = g.stats();
    assert_eq!(stats.fetch_failures, 11);
    assert_eq!(stats.db_failures, 0);
    g.shutdown();
}

#[test]
fn a_database_failure_rolls_back_and_the_batch_is_read_again() {
    let tdb = TestDb::new();
    let mut admin = tdb.admin();
    let fake = FakePypi::start();
    let (mut db, mut g) = settled(&fake, &tdb);
    fake.add_release("victim", "1.0");
    let h = fake.flush_window();
    assert!(run_to_serial(
        &mut g,
        &mut db,
        &mut Vec::new(),
        &mut Vec::new(),
        h,
        LONG
    ));
    // Someone deletes the package behind the gazer's back (piw-remove, or
    // by hand): its package set is now stale, and the next version of it
    // cannot be inserted (foreign key).
    admin
        .batch_execute("DELETE FROM packages WHERE package = 'victim'")
        .unwrap();
    fake.add_release("other", "1.0");
    fake.add_release("victim", "2.0");
    let h2 = fake.flush_window();
    let (mut web, mut skip) = (Vec::<WebRequest>::new(), Vec::<Skip>::new());
    assert!(
        run_to_serial(&mut g, &mut db, &mut web, &mut skip, h2, LONG),
        "{g:?}"
    );
    assert_eq!(g.stats().db_failures, 1);
    assert_eq!(serial(&mut admin), h2);
    let got: Vec<_> = versions(&mut admin)
        .into_iter()
        .map(|v| (v.0, v.1))
        .collect();
    assert_eq!(
        got,
        vec![
            (s("first"), s("1.0")),
            (s("other"), s("1.0")),
            (s("victim"), s("2.0")),
        ]
    );
    // Nothing was half-applied: "other" was rolled back with the failed
    // batch and added once when it was read again.
    assert_eq!(
        web.iter()
            .filter(|r| **r == WebRequest::Both(s("other")))
            .count(),
        1,
        "{web:?}"
    );
    g.shutdown();
}

#[test]
fn a_higher_serial_in_the_database_is_never_lowered() {
    let tdb = TestDb::new();
    let mut admin = tdb.admin();
    let fake = FakePypi::start();
    let (mut db, mut g) = settled(&fake, &tdb);
    // Another writer moved the serial far ahead.
    let ahead = fake.last_serial() + 5000;
    admin
        .execute("UPDATE configuration SET pypi_serial = $1", &[&ahead])
        .unwrap();
    fake.add_release("late", "1.0");
    let h = fake.flush_window();
    assert!(run_until(
        &mut g,
        &mut db,
        &mut Vec::new(),
        &mut Vec::new(),
        LONG,
        |g, _| { g.stats().db_failures == 1 && g.stored_serial() == ahead }
    ));
    assert_eq!(serial(&mut admin), ahead);
    assert!(h < ahead);
    assert!(!packages(&mut admin).iter().any(|p| p.0 == "late"));
    g.shutdown();
}

#[test]
fn dev_mode_skips_new_packages() {
    let tdb = TestDb::new();
    let mut admin = tdb.admin();
    let mut db = tdb.database();
    let fake = FakePypi::start();
    fake.add_release("devpkg", "1.0");
    let h = fake.flush_window();
    let mut c = config(&fake);
    c.dev_mode = true;
    let mut g = start(c, &mut db);
    assert!(run_to_serial(
        &mut g,
        &mut db,
        &mut Vec::new(),
        &mut Vec::new(),
        h,
        LONG
    ));
    assert_eq!(
        packages(&mut admin),
        vec![(s("devpkg"), s("development mode"), s(""))]
    );
    g.shutdown();
}

#[test]
fn paused_it_fetches_nothing_and_resumes_where_it_was() {
    let tdb = TestDb::new();
    let mut admin = tdb.admin();
    let fake = FakePypi::start();
    let (mut db, mut g) = settled(&fake, &tdb);
    g.pause();
    let calls = fake.changelog_calls();
    fake.add_release("while-asleep", "1.0");
    let h = fake.flush_window();
    assert!(!run_until(
        &mut g,
        &mut db,
        &mut Vec::new(),
        &mut Vec::new(),
        Duration::from_millis(300),
        |_, _| false
    ));
    assert_eq!(fake.changelog_calls(), calls, "a paused gazer polls PyPI");
    assert!(!packages(&mut admin).iter().any(|p| p.0 == "while-asleep"));
    g.resume();
    assert!(run_to_serial(
        &mut g,
        &mut db,
        &mut Vec::new(),
        &mut Vec::new(),
        h,
        LONG
    ));
    assert!(packages(&mut admin).iter().any(|p| p.0 == "while-asleep"));
    g.shutdown();
}

#[test]
fn big_batches_are_applied_in_slices_and_the_serial_covers_them() {
    let tdb = TestDb::new();
    let mut admin = tdb.admin();
    let mut db = tdb.database();
    let fake = FakePypi::start();
    for i in 0..250 {
        fake.add_release(&format!("bulk{i}"), "1.0");
    }
    let h = fake.flush_window();
    let mut c = config(&fake);
    c.chunk = 100;
    let mut g = start(c, &mut db);
    let mut max_backlog = 0;
    assert!(run_until(
        &mut g,
        &mut db,
        &mut Vec::new(),
        &mut Vec::new(),
        LONG,
        |g, _| {
            max_backlog = max_backlog.max(g.stats().backlog);
            g.stored_serial() >= h && g.is_idle()
        }
    ));
    // 500 events (create + source per release) in slices of 100
    assert!((400..500).contains(&max_backlog), "{max_backlog}");
    assert_eq!(packages(&mut admin).len(), 250);
    assert_eq!(versions(&mut admin).len(), 250);
    assert_eq!(serial(&mut admin), h);
    g.shutdown();
}

#[test]
fn a_removal_then_a_re_creation_in_one_batch_keeps_0_23_order() {
    let tdb = TestDb::new();
    let mut admin = tdb.admin();
    let fake = FakePypi::start();
    let (mut db, mut g) = settled(&fake, &tdb);
    fake.add_release("phoenix", "1.0");
    fake.add_release("keeper", "1.0");
    let h = fake.flush_window();
    assert!(run_to_serial(
        &mut g,
        &mut db,
        &mut Vec::new(),
        &mut Vec::new(),
        h,
        LONG
    ));
    fake.remove_project("phoenix");
    fake.add_release("bystander", "1.0");
    fake.add_release("phoenix", "2.0");
    fake.remove_release("keeper", "1.0");
    fake.add_release("keeper", "1.0");
    let h2 = fake.flush_window();
    let (mut web, mut skip) = (Vec::<WebRequest>::new(), Vec::<Skip>::new());
    assert!(run_to_serial(
        &mut g, &mut db, &mut web, &mut skip, h2, LONG
    ));
    let at = |r: WebRequest| {
        web.iter()
            .position(|x| *x == r)
            .unwrap_or_else(|| panic!("{r:?} not in {web:?}"))
    };
    let last = |r: WebRequest| web.iter().rposition(|x| *x == r).unwrap();
    assert!(
        at(WebRequest::DelPkg(s("phoenix"))) < last(WebRequest::Both(s("phoenix"))),
        "{web:?}"
    );
    assert!(
        at(WebRequest::DelVer(s("keeper"), s("1.0"))) < last(WebRequest::Both(s("keeper"))),
        "{web:?}"
    );
    assert_eq!(
        skip,
        vec![
            Skip::Package(s("phoenix")),
            Skip::Version(s("keeper"), s("1.0"))
        ]
    );
    let got: Vec<_> = versions(&mut admin)
        .into_iter()
        .map(|v| (v.0, v.1, v.3))
        .collect();
    assert_eq!(
        got,
        vec![
            (s("bystander"), s("1.0"), s("")),
            (s("first"), s("1.0"), s("")),
            (s("keeper"), s("1.0"), s("")),
            (s("phoenix"), s("2.0"), s("")),
        ]
    );
    assert!(packages(&mut admin).iter().all(|p| p.1.is_empty()));
    assert_eq!(serial(&mut admin), h2);
    g.shutdown();
}
