//! big_brother against a real database: STATS in 0.23's 19-field order
//! every 10 s, the homepage every 60 s (with the database's figures and
//! the all-time downloads counted once, then incremented), packages.json
//! every hour, a history of 100 for replay, nothing while paused, and a
//! forced HOME.

mod web_support;

use std::time::{Duration, Instant};

use piwheels::master::big_brother::{BigBrother, SitePage};
use piwheels::master::tasks::StatsSink;
use piwheels::protocol::{Record, StatusMessage, WireMessage};
use piwheels::testing::TestDb;
use web_support::*;

#[test]
fn timers_figures_history_and_pause() {
    test_dsn();
    let tdb = TestDb::new();
    let mut db = seed(&tdb);
    let out = scratch("bigbrother");
    let t0 = Instant::now();
    let mut bb = BigBrother::new(out.clone(), t0, wall());
    let mut pages: Vec<SitePage> = Vec::new();
    let mut status: Vec<StatusMessage> = Vec::new();

    bb.build_queue(&[("cp311".into(), 45), ("cp39".into(), 1)]);
    bb.downloads(7); // before the first count: already in the database
    assert_eq!(bb.next_deadline(), t0);
    bb.on_timer(t0, wall(), &mut db, &mut pages, &mut status);
    assert!(matches!(
        pages.as_slice(),
        [SitePage::Home(_), SitePage::Search]
    ));
    let SitePage::Home(home) = &pages[0] else {
        unreachable!()
    };
    // Two packages have successful builds, six files between them.
    assert_eq!(home.packages_built, 2);
    assert_eq!(home.files_count, 6);
    assert_eq!(home.downloads_all, 0);
    assert_eq!(status.len(), 1);
    let StatusMessage::Stats(s) = &status[0] else {
        panic!("{:?}", status[0])
    };
    assert_eq!(s.builds_pending, [("cp311".into(), 45), ("cp39".into(), 1)]);
    assert!(s.mem_size > 0 && s.disk_size > 0 && s.disk_size >= s.disk_free);
    // The wire form has 0.23's 19 fields.
    let wire = StatusMessage::Stats(s.clone()).encode();
    let back = StatusMessage::decode(&wire).unwrap();
    assert_eq!(back, status[0]);
    assert_eq!(s.to_value().as_array().unwrap().len(), 19);

    // Every 10 s a STATS; the homepage once a minute; search once an hour.
    bb.downloads(5);
    let mut t = t0;
    for _ in 0..12 {
        t += Duration::from_secs(10);
        bb.on_timer(t, wall(), &mut db, &mut pages, &mut status);
    }
    assert_eq!(status.len(), 13);
    let homes = pages
        .iter()
        .filter(|p| matches!(p, SitePage::Home(_)))
        .count();
    assert_eq!(homes, 3);
    assert_eq!(pages.iter().filter(|p| **p == SitePage::Search).count(), 1);
    assert_eq!(bb.stats().downloads_all, 5);

    // History holds the last 100 and replays them in order.
    for _ in 0..120 {
        t += Duration::from_secs(10);
        bb.on_timer(t, wall(), &mut db, &mut pages, &mut status);
    }
    let mut replay: Vec<StatusMessage> = Vec::new();
    bb.replay(&mut replay);
    assert_eq!(replay.len(), 100);
    assert_eq!(replay[..], status[status.len() - 100..]);

    // Paused: nothing periodic happens, and the clock moves on.
    bb.pause();
    let (n_pages, n_status) = (pages.len(), status.len());
    t += Duration::from_secs(3600);
    bb.on_timer(t, wall(), &mut db, &mut pages, &mut status);
    assert_eq!((pages.len(), status.len()), (n_pages, n_status));
    bb.resume();

    // A forced HOME is due at once.
    bb.force_home();
    assert!(bb.next_deadline() <= t);
    bb.on_timer(t, wall(), &mut db, &mut pages, &mut status);
    assert!(matches!(
        pages[n_pages..],
        [SitePage::Home(_), SitePage::Search]
    ));
}

#[test]
fn the_web_task_writes_the_homepage_and_search_index() {
    test_dsn();
    let tdb = TestDb::new();
    let mut db = seed(&tdb);
    let out = scratch("bb-web");
    let mut web = web(&out);
    web.start(&mut db, Instant::now(), wall()).unwrap();
    let t0 = Instant::now();
    let mut bb = BigBrother::new(out.clone(), t0, wall());
    let mut status: Vec<StatusMessage> = Vec::new();
    bb.on_timer(t0, wall(), &mut db, &mut web, &mut status);
    let home = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(
        home.contains("<strong>2</strong><span>packages</span>"),
        "{home}"
    );
    let search: Vec<(String, i64, i64)> =
        serde_json::from_str(&std::fs::read_to_string(out.join("packages.json")).unwrap()).unwrap();
    assert_eq!(search.len(), 4);
}
