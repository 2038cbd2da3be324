//! The secretary's buffer against the real scribe and database: bursts
//! collapse to one write per package, and a restart in the middle of a
//! burst loses nothing (the buffer goes through `rewrites_pending`).

mod web_support;

use std::time::{Duration, Instant};

use piwheels::master::tasks::WebRequest;
use piwheels::testing::TestDb;
use web_support::*;

fn packages(db: &mut piwheels::db::Database) -> Vec<String> {
    let names: Vec<String> = (0..10).map(|i| format!("pkg{i}")).collect();
    for (i, p) in names.iter().enumerate() {
        db.add_new_package(p, "", "burst").unwrap();
        db.add_new_package_version(p, "1.0", Some(at(i as i64)), "")
            .unwrap();
        build(
            db,
            p,
            "1.0",
            "cp37m",
            vec![wheel(p, "1.0", "cp37m", None, &[])],
        );
    }
    names
}

#[test]
fn a_burst_of_1000_requests_for_10_packages_gives_10_writes() {
    test_dsn();
    let tdb = TestDb::new();
    tdb.admin()
        .batch_execute("INSERT INTO build_abis (abi_tag) VALUES ('cp37m')")
        .unwrap();
    let mut db = tdb.database();
    let names = packages(&mut db);
    let out = scratch("burst");
    let mut web = web(&out);
    let t0 = Instant::now();
    web.start(&mut db, t0, wall()).unwrap();
    let before = web.counters();
    for i in 0..1000 {
        let p = names[i % 10].clone();
        // Mostly PROJECT, some BOTH: BOTH must win for those packages.
        let req = if i % 7 == 0 {
            WebRequest::Both(p)
        } else {
            WebRequest::Project(p)
        };
        let at = t0 + Duration::from_millis(i as u64 * 50);
        web.request_at(req, &mut db, at, wall());
    }
    assert_eq!(web.pending(), 10);
    // Nothing is due before the first request is 60 s old.
    web.on_timer(t0 + Duration::from_secs(59), wall(), &mut db);
    assert_eq!(web.counters(), before);
    let end = t0 + Duration::from_secs(120);
    while web.next_deadline().is_some_and(|d| d <= end) {
        web.on_timer(end, wall(), &mut db);
    }
    let c = web.counters();
    assert_eq!(c.projects - before.projects, 10, "{c:?}");
    assert_eq!(c.flushes - before.flushes, 1);
    // i % 7 == 0 hits every residue mod 10 within 1000 requests.
    assert_eq!(c.simple_pages - before.simple_pages, 10);
    // The new packages were added to the simple index, once.
    assert_eq!(c.simple_indexes - before.simple_indexes, 1);
    let index = std::fs::read_to_string(out.join("simple/index.html")).unwrap();
    assert!(names.iter().all(|p| index.contains(&format!("\"{p}/\""))));
    assert_eq!(web.pending(), 0);
}

#[test]
fn a_restart_in_the_middle_loses_nothing() {
    test_dsn();
    let tdb = TestDb::new();
    tdb.admin()
        .batch_execute("INSERT INTO build_abis (abi_tag) VALUES ('cp37m')")
        .unwrap();
    let mut db = tdb.database();
    let names = packages(&mut db);
    let out = scratch("restart");
    let t0 = Instant::now();
    let mut first = web(&out);
    first.start(&mut db, t0, wall()).unwrap();
    for i in 0..500 {
        let p = names[i % 10].clone();
        let req = if i < 10 && i % 2 == 0 {
            WebRequest::Both(p)
        } else {
            WebRequest::Project(p)
        };
        first.request_at(req, &mut db, t0 + Duration::from_millis(i as u64), wall());
    }
    first.shutdown(&mut db).unwrap();
    drop(first);
    let saved = db.load_rewrites_pending().unwrap();
    assert_eq!(saved.len(), 10);

    // A new master, 30 s later: the entries keep their age.
    let t1 = Instant::now();
    let wall1 = wall() + chrono::Duration::seconds(30);
    let mut second = web(&out);
    second.start(&mut db, t1, wall1).unwrap();
    assert_eq!(second.pending(), 10);
    for i in 0..500 {
        let p = names[i % 10].clone();
        second.request_at(WebRequest::Project(p), &mut db, t1, wall1);
    }
    assert_eq!(second.pending(), 10);
    second.on_timer(t1 + Duration::from_secs(29), wall1, &mut db);
    assert_eq!(second.counters().projects, 0);
    let end = t1 + Duration::from_secs(31);
    while second.next_deadline().is_some_and(|d| d <= end) {
        second.on_timer(end, wall1, &mut db);
    }
    let c = second.counters();
    assert_eq!(c.projects, 10, "{c:?}");
    // BOTH survived the restart for the even packages.
    assert_eq!(c.simple_pages, 5);
    for (i, p) in names.iter().enumerate() {
        assert!(out.join(format!("project/{p}/index.html")).exists());
        assert_eq!(
            out.join(format!("simple/{p}/index.html")).exists(),
            i % 2 == 0
        );
    }
    // An empty buffer saves as empty.
    second.shutdown(&mut db).unwrap();
    assert!(db.load_rewrites_pending().unwrap().is_empty());
}

#[test]
fn paused_output_waits_and_requests_are_still_taken() {
    test_dsn();
    let tdb = TestDb::new();
    let mut db = tdb.database();
    let names = packages(&mut db);
    let out = scratch("pause");
    let mut web = web(&out);
    let t0 = Instant::now();
    web.start(&mut db, t0, wall()).unwrap();
    web.pause();
    web.request_at(WebRequest::Both(names[0].clone()), &mut db, t0, wall());
    assert_eq!(web.next_deadline(), None);
    web.on_timer(t0 + Duration::from_secs(600), wall(), &mut db);
    assert_eq!(web.counters().projects, 0);
    web.resume();
    assert!(web.next_deadline().is_some());
    web.on_timer(t0 + Duration::from_secs(600), wall(), &mut db);
    assert_eq!(web.counters().projects, 1);
}

#[test]
fn a_full_rewrite_leaves_unchanged_pages_alone_and_rewrites_changed_ones() {
    use std::os::unix::fs::MetadataExt;
    test_dsn();
    let tdb = TestDb::new();
    tdb.admin()
        .batch_execute("INSERT INTO build_abis (abi_tag) VALUES ('cp37m')")
        .unwrap();
    let mut db = tdb.database();
    let names = packages(&mut db);
    let out = scratch("unchanged");
    let mut web = web(&out);
    web.start(&mut db, Instant::now(), wall()).unwrap();
    web.rewrite_all(&mut db);
    let pages = |p: &str| {
        [
            out.join("simple").join(p).join("index.html"),
            out.join("simple").join(p).join("index.json"),
            out.join("project").join(p).join("index.html"),
            out.join("project").join(p).join("json/index.json"),
        ]
    };
    let inodes = |p: &str| pages(p).map(|f| std::fs::metadata(f).unwrap().ino());
    let before = inodes(&names[0]);
    // Nothing changed (only the time stamps would): no page is replaced.
    web.rewrite_all(&mut db);
    assert_eq!(inodes(&names[0]), before);
    // A new release changes all four pages of that package only.
    db.add_new_package_version(&names[0], "2.0", Some(at(100)), "")
        .unwrap();
    build(
        &mut db,
        &names[0],
        "2.0",
        "cp37m",
        vec![wheel(&names[0], "2.0", "cp37m", None, &[])],
    );
    let other = inodes(&names[1]);
    web.rewrite_all(&mut db);
    let after = inodes(&names[0]);
    for (i, (b, a)) in before.iter().zip(after.iter()).enumerate() {
        assert_ne!(b, a, "{} was not rewritten", pages(&names[0])[i].display());
    }
    assert!(
        std::fs::read_to_string(&pages(&names[0])[0])
            .unwrap()
            .contains("2.0")
    );
    assert_eq!(inodes(&names[1]), other);
}
