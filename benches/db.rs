//! `cargo bench --bench db [-- OPTIONS]`: how fast the data layer fills and reads a big database.
//!
//! Not a test. Creates a scratch database (through `piwheels::testing`, so
//! `PIW_TEST_DSN` picks the cluster), fills it through the same calls the
//! master makes (`add_new_package`, `add_new_package_version`,
//! `add_package_name`, `log_build`), reports the rates, then times
//! `get_build_queue(100000)` and `get_project_data`. The database is dropped
//! at the end.
//!
//! options: [--packages N] [--versions M] [--builds-every K]
//!   N packages (default 100000) with M versions each (default 5); every
//!   K-th version (default 10) gets a build, alternately a failure and a
//!   success with one wheel.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use piwheels::db::{BuildLog, BuiltFile};
use piwheels::testing::TestDb;

fn rate(n: usize, d: Duration) -> String {
    format!(
        "{n} in {:.1}s ({:.0}/s)",
        d.as_secs_f64(),
        n as f64 / d.as_secs_f64()
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = pico_args::Arguments::from_env();
    let packages: usize = args.opt_value_from_str("--packages")?.unwrap_or(100_000);
    let versions: usize = args.opt_value_from_str("--versions")?.unwrap_or(5);
    let every: usize = args.opt_value_from_str("--builds-every")?.unwrap_or(10);

    let tdb = TestDb::new();
    let mut admin = tdb.admin();
    admin
        .batch_execute("INSERT INTO build_abis (abi_tag) VALUES ('cp37m'), ('cp39'), ('cp311')")?;
    let mut db = tdb.database();
    let epoch = Utc.with_ymd_and_hms(2015, 1, 1, 0, 0, 0).unwrap();

    let start = Instant::now();
    for p in 0..packages {
        let name = format!("package-{p}");
        db.add_new_package(&name, "", "A benchmark package")?;
        db.add_package_name(&name, &format!("Package_{p}"), Some(epoch))?;
    }
    let t_packages = start.elapsed();
    println!(
        "packages (add_new_package + add_package_name): {}",
        rate(packages, t_packages)
    );

    let start = Instant::now();
    let mut n = 0;
    for p in 0..packages {
        let name = format!("package-{p}");
        for v in 0..versions {
            let when = epoch + chrono::Duration::minutes((p * versions + v) as i64);
            db.add_new_package_version(&name, &format!("{v}.0"), Some(when), "")?;
            n += 1;
        }
    }
    println!(
        "versions (add_new_package_version): {}",
        rate(n, start.elapsed())
    );

    let start = Instant::now();
    let mut builds = 0;
    for i in (0..packages * versions).step_by(every.max(1)) {
        let (p, v) = (i / versions, i % versions);
        let (package, version) = (format!("package-{p}"), format!("{v}.0"));
        let status = builds % 2 == 1;
        let files = if status {
            vec![BuiltFile {
                filename: format!("package_{p}-{v}.0-cp37-cp37m-linux_armv7l.whl"),
                filesize: 123_456,
                filehash: "f".repeat(64),
                package_tag: format!("package_{p}"),
                package_version_tag: version.clone(),
                py_version_tag: "cp37".into(),
                abi_tag: "cp37m".into(),
                platform_tag: "linux_armv7l".into(),
                requires_python: Some(">=3.7".into()),
                location: "/simple".into(),
                dependencies: vec![("apt".into(), "libc6".into()), ("pip".into(), "six".into())],
            }]
        } else {
            vec![]
        };
        db.log_build(&BuildLog {
            package,
            version,
            built_by: 1,
            duration: Duration::from_secs(90),
            abi_tag: "cp37m".into(),
            status,
            files,
        })?;
        builds += 1;
    }
    println!("builds (log_build): {}", rate(builds, start.elapsed()));
    admin.batch_execute("ANALYZE")?;

    for _ in 0..2 {
        let start = Instant::now();
        let mut per_abi = std::collections::BTreeMap::<String, usize>::new();
        let rows = db.get_build_queue(100_000, |abi, _, _| {
            *per_abi.entry(abi.to_owned()).or_default() += 1;
        })?;
        println!(
            "get_build_queue(100000): {rows} rows in {:.2}s {per_abi:?}",
            start.elapsed().as_secs_f64()
        );
    }
    let start = Instant::now();
    let mut count = 0;
    for p in (0..packages).step_by((packages / 100).max(1)) {
        let data = db.get_project_data(&format!("package-{p}"))?;
        count += data.releases.len();
    }
    let calls = packages.div_ceil((packages / 100).max(1));
    println!(
        "get_project_data: {calls} calls ({count} releases) in {:.3}s ({:.2} ms/call)",
        start.elapsed().as_secs_f64(),
        start.elapsed().as_secs_f64() * 1000.0 / calls as f64
    );
    let start = Instant::now();
    let s = db.get_statistics()?;
    println!(
        "get_statistics: {:.3}s ({} files)",
        start.elapsed().as_secs_f64(),
        s.files_count
    );
    let start = Instant::now();
    let n = db.get_search_index(|_, _, _| {})?;
    println!(
        "get_search_index: {n} rows in {:.2}s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
