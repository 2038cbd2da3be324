//! A full rewrite big enough that its batches are committed on the helper
//! thread while the next ones are written (more than 1,000 files a chunk):
//! every page lands, a changed site is rewritten, and a commit that fails
//! in the middle leaves no temporary file and is retried until it works.

mod web_support;

use std::path::Path;
use std::time::{Duration, Instant};

use piwheels::db::Database;
use piwheels::master::web::Web;
use piwheels::testing::TestDb;
use web_support::*;

const PACKAGES: usize = 600;

fn seed_many(tdb: &TestDb) {
    seed_n(tdb, PACKAGES);
}

fn seed_n(tdb: &TestDb, packages: usize) {
    tdb.admin()
        .batch_execute(&format!(
            "INSERT INTO build_abis (abi_tag) VALUES ('cp37m');
             INSERT INTO packages (package, description)
                 SELECT 'many-' || lpad(i::text, 4, '0'), 'number ' || i
                 FROM generate_series(1, {packages}) AS i;
             INSERT INTO versions (package, version, released)
                 SELECT package, '1.0', '2024-01-01' FROM packages;"
        ))
        .unwrap();
}

/// Temporary files and directories left anywhere under `dir` (ours
/// start `.piw-`).
fn leftovers(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".piw-") {
            out.push(e.path().display().to_string());
        } else if e.file_type().unwrap().is_dir() {
            out.extend(leftovers(&e.path()));
        }
    }
    out
}

fn page(out: &Path, n: usize) -> String {
    let p = format!("many-{n:04}");
    std::fs::read_to_string(out.join("project").join(&p).join("index.html"))
        .unwrap_or_else(|e| panic!("{p}'s page: {e}"))
}

/// Takes away the directory that stood where a page goes, lets the retry
/// come due and runs the rewrite to its end; the page is then in place.
fn finish_once_cleared(web: &mut Web, db: &mut Database, blocker: &Path, t0: Instant) {
    std::fs::remove_dir_all(blocker).unwrap();
    let later = t0 + Duration::from_secs(11);
    while web.rewriting() {
        web.on_timer(later, wall(), db);
    }
    assert!(blocker.is_file());
}

#[test]
fn every_page_of_a_big_site_lands_and_changes() {
    test_dsn();
    let tdb = TestDb::new();
    seed_many(&tdb);
    let mut db = tdb.database();
    let out = scratch("big-rewrite");
    let mut web = web(&out);
    web.start(&mut db, Instant::now(), wall()).unwrap();
    let before = web.counters().projects;
    web.rewrite_all(&mut db);
    assert_eq!(web.counters().projects - before, PACKAGES as u64);
    for n in 1..=PACKAGES {
        for f in ["index.html", "index.json"] {
            assert!(
                out.join("simple")
                    .join(format!("many-{n:04}"))
                    .join(f)
                    .is_file()
            );
        }
        assert!(page(&out, n).contains(&format!("number {n}")));
    }
    assert_eq!(leftovers(&out), Vec::<String>::new());

    tdb.admin()
        .batch_execute("UPDATE packages SET description = description || ' changed'")
        .unwrap();
    web.rewrite_all(&mut db);
    for n in 1..=PACKAGES {
        assert!(page(&out, n).contains(&format!("number {n} changed")));
    }
    assert_eq!(leftovers(&out), Vec::<String>::new());
}

#[test]
fn a_commit_failing_mid_chunk_is_retried_and_leaves_nothing_behind() {
    test_dsn();
    let tdb = TestDb::new();
    seed_many(&tdb);
    let mut db = tdb.database();
    let out = scratch("failing-rewrite");
    let mut web = web(&out);
    let t0 = Instant::now();
    // What a crash in the middle of a rewrite leaves: package directories
    // a process that is gone was building. The start removes them.
    let dead = (4_000_000u32..)
        .find(|p| !Path::new(&format!("/proc/{p}")).exists())
        .unwrap();
    let building = out.join(format!("project/.piw-{dead}-7.tmp"));
    std::fs::create_dir_all(building.join("json")).unwrap();
    std::fs::write(building.join("json/index.json"), "half a page").unwrap();
    let building = out.join(format!("simple/.piw-{dead}-8.tmp"));
    std::fs::create_dir_all(&building).unwrap();
    std::fs::write(building.join("index.html"), "half a page").unwrap();
    web.start(&mut db, t0, wall()).unwrap();
    assert_eq!(leftovers(&out), Vec::<String>::new());
    // A page that cannot be renamed into place: a non-empty directory
    // stands where package 100's project JSON goes (it is in the first
    // batch the helper thread commits).
    let blocker = out.join("project/many-0100/json/index.json");
    std::fs::create_dir_all(blocker.join("in-the-way")).unwrap();
    web.start_full_rewrite(t0);
    web.on_timer(t0, wall(), &mut db);
    assert!(web.rewriting(), "the failed chunk is to be retried");
    assert_eq!(leftovers(&out), Vec::<String>::new());
    // Not retried before its time.
    let before = web.counters().projects;
    web.on_timer(t0 + Duration::from_secs(1), wall(), &mut db);
    assert_eq!(web.counters().projects, before);

    finish_once_cleared(&mut web, &mut db, &blocker, t0);
    for n in 1..=PACKAGES {
        assert!(page(&out, n).contains(&format!("number {n}")));
    }
    assert_eq!(leftovers(&out), Vec::<String>::new());
}

#[test]
fn a_chunk_whose_last_batch_fails_after_it_returned_is_written_again() {
    test_dsn();
    let tdb = TestDb::new();
    // Two chunks: 1,000 packages, then 100.
    seed_n(&tdb, 1100);
    let mut db = tdb.database();
    let out = scratch("failing-tail");
    let mut web = web(&out);
    let t0 = Instant::now();
    web.start(&mut db, t0, wall()).unwrap();
    // Package 990's pages are in the first chunk's last batch, which goes
    // on committing after the chunk returned.
    let blocker = out.join("project/many-0990/json/index.json");
    std::fs::create_dir_all(blocker.join("in-the-way")).unwrap();
    web.start_full_rewrite(t0);
    web.on_timer(t0, wall(), &mut db);
    assert!(web.rewriting());
    // The second chunk finds the failure and the rewrite goes back to the
    // first, 10 s later.
    web.on_timer(t0, wall(), &mut db);
    assert!(web.rewriting(), "the failed chunk is to be written again");
    assert_eq!(leftovers(&out), Vec::<String>::new());
    assert!(blocker.is_dir());

    finish_once_cleared(&mut web, &mut db, &blocker, t0);
    for n in [1, 500, 989, 990, 991, 1000, 1001, 1100] {
        assert!(page(&out, n).contains(&format!("number {n}")));
    }
    assert_eq!(leftovers(&out), Vec::<String>::new());
    let index = std::fs::read_to_string(out.join("simple/index.html")).unwrap();
    assert!(index.contains("many-0001") && index.contains("many-1100"));
}
