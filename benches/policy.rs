//! `cargo bench --bench policy`: re-evaluating an allow-list against a big
//! database (target: under 5 s for 500,000 versions), and a second run
//! that changes nothing (so rewrites nothing).

use std::time::Instant;

use piwheels::master::policy::BuildPolicy;
use piwheels::testing::TestDb;

fn main() {
    let packages: i64 = std::env::var("PIW_BENCH_PACKAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let versions_each: i64 = 5;
    let tdb = TestDb::new();
    let t = Instant::now();
    // Seeded in bulk as the superuser: the figure measured is the
    // re-evaluation, not the fill.
    tdb.admin()
        .execute(
            "INSERT INTO packages (package) \
             SELECT 'pkg-' || lpad(i::text, 6, '0') FROM generate_series(1::bigint, $1::bigint) AS i",
            &[&packages],
        )
        .unwrap();
    tdb.admin()
        .execute(
            "INSERT INTO versions (package, version, released) \
             SELECT 'pkg-' || lpad(i::text, 6, '0'), v || '.0', \
                    timestamp '2020-01-01' + (v || ' days')::interval \
             FROM generate_series(1::bigint, $1::bigint) AS i, generate_series(1::bigint, $2::bigint) AS v",
            &[&packages, &versions_each],
        )
        .unwrap();
    tdb.admin().batch_execute("ANALYZE").unwrap();
    println!(
        "seeded {packages} packages and {} versions in {:.1}s",
        packages * versions_each,
        t.elapsed().as_secs_f64()
    );
    let mut db = tdb.database();
    let policy = BuildPolicy::parse(
        "pkg-000001\npkg-000002\npkg-00001?\npkg-05000*\npkg-099999\n",
        Some(2),
    )
    .unwrap();
    println!("| figure | value | target |");
    println!("|---|---|---|");
    for (label, policy) in [
        ("allow-list of 5 lines, newest 2 (first run)", &policy),
        ("same list again (nothing changes)", &policy),
        ("back to building everything", &BuildPolicy::all()),
    ] {
        let t = Instant::now();
        let changes = policy.reevaluate(&mut db).unwrap();
        println!(
            "| {label}: {} packages, {} versions changed | {:.2} s | < 5 s for {} versions |",
            changes.packages.len(),
            changes.versions,
            t.elapsed().as_secs_f64(),
            packages * versions_each
        );
    }
}
