//! An hour of simulated time with a misbehaving PyPI: cloud_gazer is
//! driven with an injected clock (a poll every simulated 10 s, 360 polls)
//! against the fake PyPI, which answers 500s and 503s, rate limits,
//! garbage, truncated bodies, stalls past the timeout, and changelogs whose
//! serials go backwards. The stored serial must never move backwards, and
//! at the end every release PyPI announced is in the database, once, and
//! nothing PyPI did not announce.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use piwheels::db::Database;
use piwheels::fake_pypi::{FakePypi, Misbehaviour};
use piwheels::master::cloud_gazer::{CloudGazer, CloudGazerConfig};
use piwheels::master::tasks::{Skip, WebRequest};
use piwheels::testing::TestDb;

fn stored(admin: &mut postgres::Client) -> i64 {
    admin
        .query_one("SELECT pypi_serial FROM configuration", &[])
        .unwrap()
        .get(0)
}

/// A changelog whose only event has serial 1, long since applied: a
/// ghost package PyPI never announced in order.
fn backwards_changelog(ts: i64) -> String {
    format!(
        "<?xml version='1.0'?><methodResponse><params><param><value><array><data>\
         <value><array><data>\
         <value><string>ghost</string></value><value><string>6.6</string></value>\
         <value><int>{ts}</int></value><value><string>new release</string></value>\
         <value><int>1</int></value>\
         </data></array></value>\
         </data></array></value></param></params></methodResponse>"
    )
}

/// One poll at simulated `now`: offer the timer, then serve the gazer until
/// it is idle again (real time, bounded).
fn poll(
    g: &mut CloudGazer,
    db: &mut Database,
    web: &mut Vec<WebRequest>,
    skip: &mut Vec<Skip>,
    now: Instant,
) {
    g.on_timer(now, db, web, skip);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let readable = {
            let mut items = [g.poll_item()];
            zmq::poll(&mut items, 50).unwrap();
            items[0].is_readable()
        };
        if readable || g.has_backlog() {
            g.on_ready(now, db, web, skip);
        }
        if g.is_idle() {
            return;
        }
        assert!(Instant::now() < deadline, "the gazer never settled");
    }
}

#[test]
fn an_hour_of_a_misbehaving_pypi_loses_and_doubles_no_event() {
    let tdb = TestDb::new();
    let mut admin = tdb.admin();
    let mut db = tdb.database();
    let fake = FakePypi::start();
    let mut c = CloudGazerConfig::new(&fake.xmlrpc_url(), &fake.json_url());
    c.client.timeout = Duration::from_millis(300);
    c.client.total_timeout = Duration::from_secs(2);
    let mut g = CloudGazer::new(c, &zmq::Context::new(), &mut db).expect("cloud_gazer starts");
    let (mut web, mut skip) = (Vec::<WebRequest>::new(), Vec::<Skip>::new());
    let t0 = Instant::now();
    let mut releases = BTreeSet::new();
    let mut last = 0;
    let mut injected = 0;
    let mut failures = 0;
    let real = Instant::now();
    let check = |g: &CloudGazer, admin: &mut postgres::Client, last: &mut i64| {
        let (mine, db) = (g.stored_serial(), stored(admin));
        assert!(
            mine >= *last && db >= *last,
            "serial went back: {last} -> {mine}/{db}"
        );
        *last = mine.max(db);
    };
    for step in 0..360u64 {
        let now = t0 + Duration::from_secs(10 * step);
        let name = format!("pkg{step:03}");
        fake.add_release(&name, "1.0");
        releases.insert((name, "1.0".to_string()));
        if step % 3 == 0 && step > 0 {
            let old = format!("pkg{:03}", step / 3);
            fake.add_release(&old, "2.0");
            releases.insert((old, "2.0".to_string()));
        }
        fake.advance(10);
        let m = match step % 10 {
            1 => Some(Misbehaviour::Status(500)),
            2 => Some(Misbehaviour::Status(503)),
            3 => Some(Misbehaviour::Garbage),
            4 => Some(Misbehaviour::Truncated),
            5 if step % 50 == 5 => Some(Misbehaviour::Stall(Duration::from_secs(5))),
            6 => Some(Misbehaviour::Body(backwards_changelog(fake.now()))),
            7 => Some(Misbehaviour::RateLimited),
            _ => None,
        };
        if let Some(m) = m {
            // A backwards changelog is a well-formed answer, not a failure.
            if !matches!(m, Misbehaviour::Body(_)) {
                failures += 1;
            }
            fake.misbehave(m);
            injected += 1;
        }
        poll(&mut g, &mut db, &mut web, &mut skip, now);
        check(&g, &mut admin, &mut last);
    }
    // PyPI behaves again; its 5-minute ordering window is flushed.
    fake.behave();
    let end = fake.flush_window();
    for step in 360..400u64 {
        if g.stored_serial() >= end {
            break;
        }
        poll(
            &mut g,
            &mut db,
            &mut web,
            &mut skip,
            t0 + Duration::from_secs(10 * step),
        );
        check(&g, &mut admin, &mut last);
    }
    assert_eq!(g.stored_serial(), end);
    assert_eq!(stored(&mut admin), end);
    let stats = g.stats();
    eprintln!(
        "an hour of PyPI: {injected} misbehaving polls, {} fetch failures, {} releases, \
         {:?} real time",
        stats.fetch_failures,
        releases.len(),
        real.elapsed()
    );
    assert_eq!(stats.fetch_failures, failures, "{stats:?}");
    let got: BTreeSet<(String, String)> = admin
        .query("SELECT package, version FROM versions", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let rows: i64 = admin
        .query_one("SELECT count(*) FROM versions", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows as usize, got.len());
    assert_eq!(got, releases, "lost or phantom releases");
    let packages: i64 = admin
        .query_one("SELECT count(*) FROM packages", &[])
        .unwrap()
        .get(0);
    assert_eq!(packages, 360, "the ghost of serial 1 was applied");
    g.shutdown();
}
