//! `cargo bench --bench web [-- OPTIONS]`: how fast the web task rewrites a
//! big site, and how much memory it needs.
//!
//! Not a test. For each size it creates a scratch database (through
//! `piwheels::testing`, so `PIW_TEST_DSN` picks the cluster), fills it with
//! bulk SQL (5 versions per package, a build for every other version,
//! half of them successful with one wheel and an apt and a pip dependency,
//! an alias per package), then times a full rewrite of every page
//! (`Web::rewrite_all`: project page, project JSON, simple page and its
//! PEP 691 JSON per package, then the simple index and sitemaps), with
//! the peak RSS of that phase (VmHWM, reset before it). For the ratio it
//! then writes the same files with the same sizes through the same durable
//! batch writer, without reading the database or rendering anything.
//! Last, the simple index alone for a database of `--index-names` names.
//!
//! options: [--packages N,M,...] (default 10000,100000)
//!          [--index-names N] (default 600000) [--keep]

use std::path::{Path, PathBuf};
use std::time::Instant;

use askama::Template;
use piwheels::master::web::pages;
use piwheels::master::web::writer::{Batch, ensure_dir};
use piwheels::master::web::{Web, WebConfig};
use piwheels::testing::TestDb;

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn reset_hwm() {
    // Hand freed heap back first, so the benchmark's own earlier
    // allocations do not count in the next phase.
    // SAFETY: malloc_trim has no preconditions.
    unsafe { libc::malloc_trim(0) };
    // "5" resets the peak resident set size (Linux 4.0+).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// CPU seconds (user, system) of the calling thread and of the whole
/// process (exited helper threads included), from /proc.
fn cpu_times() -> [f64; 4] {
    fn read(path: &str) -> (f64, f64) {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let stat = std::fs::read_to_string(path).unwrap_or_default();
        let after = stat.rsplit_once(") ").map_or("", |(_, r)| r);
        let f: Vec<f64> = after
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0.0))
            .collect();
        (
            f.get(11).copied().unwrap_or(0.0) / hz,
            f.get(12).copied().unwrap_or(0.0) / hz,
        )
    }
    let (tu, ts) = read("/proc/thread-self/stat");
    let (pu, ps) = read("/proc/self/stat");
    [tu, ts, pu, ps]
}

/// Runs a full rewrite and says where its CPU time went: the loop's
/// thread (reading, rendering, writing temporary files) and the commit
/// helpers (sync and renames). Returns the wall-clock seconds.
fn timed_rewrite(web: &mut Web, db: &mut piwheels::db::Database) -> f64 {
    let before = cpu_times();
    let t = Instant::now();
    let mono = || {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the timespec it is given.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
    };
    let from = mono();
    let waited = web.counters().commit_wait;
    web.rewrite_all(db);
    let secs = t.elapsed().as_secs_f64();
    let waited = (web.counters().commit_wait - waited).as_secs_f64();
    let after = cpu_times();
    let d: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    println!(
        "   cpu: loop thread {:.1}s user + {:.1}s system, {waited:.1}s waiting for commits; commit helpers {:.1}s user + {:.1}s system; wall {secs:.1}s (CLOCK_MONOTONIC {from:.3} to {:.3}, for perf -k CLOCK_MONOTONIC)",
        d[0],
        d[1],
        d[2] - d[0],
        d[3] - d[1],
        mono()
    );
    secs
}

fn seed(tdb: &TestDb, packages: usize) {
    let n = packages as i64 - 1;
    let sql = format!(
        "INSERT INTO build_abis (abi_tag) VALUES ('cp37m'), ('cp39'), ('cp311');
         INSERT INTO packages (package, description)
           SELECT 'package-' || i, 'A benchmark package number ' || i FROM generate_series(0, {n}) i;
         INSERT INTO package_names (package, name, seen)
           SELECT 'package-' || i, 'Package_' || i, now() FROM generate_series(0, {n}) i;
         INSERT INTO versions (package, version, released)
           SELECT 'package-' || i, v || '.0', now() FROM generate_series(0, {n}) i, generate_series(0, 4) v;
         INSERT INTO builds (package, version, built_by, duration, status, abi_tag)
           SELECT 'package-' || i, v || '.0', 1, '1 minute', (i + v) % 4 = 0, 'cp37m'
           FROM generate_series(0, {n}) i, generate_series(0, 4) v WHERE (i * 5 + v) % 2 = 0;
         INSERT INTO files (filename, build_id, filesize, filehash, package_tag,
                            package_version_tag, py_version_tag, abi_tag, platform_tag, requires_python)
           SELECT replace(b.package, '-', '_') || '-' || b.version || '-cp37-cp37m-linux_armv7l.whl',
                  b.build_id, 123456, md5(b.package) || md5(b.version), replace(b.package, '-', '_'),
                  b.version, 'cp37', 'cp37m', 'linux_armv7l', '>=3.7'
           FROM builds b WHERE b.status;
         INSERT INTO dependencies (filename, tool, dependency) SELECT filename, 'apt', 'libfoo1' FROM files;
         INSERT INTO dependencies (filename, tool, dependency) SELECT filename, 'pip', 'numpy' FROM files;
         ANALYZE;"
    );
    tdb.admin().batch_execute(&sql).expect("seed");
}

/// Every file under `dir` with its size (paths relative to `base`),
/// symlinks left out.
fn files(dir: &Path, base: &Path, each: &mut dyn FnMut(&Path, u64)) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            files(&e.path(), base, each);
        } else if t.is_file() {
            let path = e.path();
            each(
                path.strip_prefix(base).unwrap(),
                e.metadata().unwrap().len(),
            );
        }
    }
}

fn rewrite(packages: usize, root: &Path) {
    println!("== {packages} packages");
    let tdb = TestDb::new();
    let t = Instant::now();
    seed(&tdb, packages);
    println!("seeded in {:.1}s", t.elapsed().as_secs_f64());
    let mut db = tdb.database();
    let out = root.join(format!("site-{packages}"));
    let _ = std::fs::remove_dir_all(&out);
    let mut config = WebConfig::new(out.clone());
    config.base_url = "https://bench.example.org/".into();
    let mut web = Web::new(config);
    web.start(&mut db, Instant::now(), Utc::now()).unwrap();

    // Where the time goes: the database alone, then rendering too.
    let t = Instant::now();
    let (mut after, mut rows, mut rendered) = (String::new(), 0usize, 0usize);
    let site = web.scribe().site().clone();
    let passes: &[bool] = if std::env::var_os("PIW_BENCH_NO_BREAKDOWN").is_some() {
        &[]
    } else {
        &[false, true]
    };
    for &render in passes {
        let t = Instant::now();
        after.clear();
        loop {
            let mut last = None;
            let n = db
                .for_each_project_after(&after, 1000, |row| {
                    rows += 1;
                    if render {
                        if let Ok(data) = &row.data {
                            let p = pages::Project::new(&row.package, data, None);
                            let meta = Default::default();
                            rendered += pages::simple_page(&p, &meta, Utc::now()).len();
                            rendered += pages::simple_json(&p, &meta).len();
                            rendered += pages::project_json(&p, &site).len();
                            rendered += pages::ProjectPage::new(&site, &p, Utc::now())
                                .render()
                                .unwrap()
                                .len();
                        }
                    }
                    last = Some(row.package);
                })
                .unwrap();
            match last {
                Some(l) if n == 1000 => after = l,
                _ => break,
            }
        }
        println!(
            "{}: {:.1}s",
            if render {
                "reading and rendering (no writes)"
            } else {
                "reading the documents only"
            },
            t.elapsed().as_secs_f64()
        );
    }
    let _ = (t, rows, rendered);

    // First pass: a new site (every directory and alias link is created).
    unsafe { libc::sync() };
    let first = timed_rewrite(&mut web, &mut db);
    println!("first write of the site (directories and links created): {first:.1}s");
    let before = web.counters();

    // Each timed phase starts with nothing dirty (the seeding left the
    // database's writes in the page cache; the first syncfs would pay).
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    reset_hwm();
    let secs = timed_rewrite(&mut web, &mut db);
    // Read before anything of the benchmark's own allocates.
    let unchanged_hwm = vm_hwm_kib();
    let mut c = web.counters();
    c.projects -= before.projects;
    // Counted without keeping the list: 400,000 paths would be 30 MB of
    // the benchmark's own in the next phase's peak RSS.
    let (mut count, mut bytes) = (0usize, 0u64);
    let mut tally = |_: &Path, n: u64| {
        count += 1;
        bytes += n;
    };
    files(&out.join("simple"), &out, &mut tally);
    files(&out.join("project"), &out, &mut tally);
    println!(
        "full rewrite of the existing site: {} projects, {} files, {:.1} MB in {secs:.1}s ({:.0} packages/s, {:.0} files/s), peak RSS {:.1} MiB",
        c.projects,
        count,
        bytes as f64 / 1e6,
        c.projects as f64 / secs,
        count as f64 / secs,
        unchanged_hwm as f64 / 1024.0
    );

    // Every page changed (a description and every file's Requires-Python):
    // each page is written, synced and renamed over its old version.
    tdb.admin()
        .batch_execute(
            "UPDATE packages SET description = description || ' (changed)';
             UPDATE files SET requires_python = '>=3.8'",
        )
        .expect("change every page");
    unsafe { libc::sync() };
    reset_hwm();
    let changed = timed_rewrite(&mut web, &mut db);
    let changed_hwm = vm_hwm_kib();
    println!(
        "full rewrite, every page changed: {changed:.1}s ({:.0} files/s), peak RSS {:.1} MiB",
        count as f64 / changed,
        changed_hwm as f64 / 1024.0
    );

    // The same files, same sizes, same durable batches of 4,000, no
    // database and no rendering.
    let mut list = Vec::new();
    let mut keep = |rel: &Path, n: u64| list.push((rel.to_path_buf(), n));
    files(&out.join("simple"), &out, &mut keep);
    files(&out.join("project"), &out, &mut keep);
    let copy = root.join(format!("plain-{packages}"));
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(&copy).unwrap();
    let zeros = vec![b' '; list.iter().map(|(_, n)| *n as usize).max().unwrap_or(0)];
    let t = Instant::now();
    let volatile = std::env::var_os("PIW_BENCH_VOLATILE").is_some();
    let fresh = || {
        if volatile {
            Batch::volatile()
        } else {
            Batch::new()
        }
    };
    let mut batch = fresh();
    for (rel, len) in &list {
        let target = copy.join(rel);
        let mut dir = copy.clone();
        for part in rel.parent().unwrap().components() {
            dir.push(part);
            ensure_dir(&dir).unwrap();
        }
        batch.write(&target, &zeros[..*len as usize]).unwrap();
        if batch.len() >= 4 * piwheels::master::web::REWRITE_CHUNK {
            std::mem::replace(&mut batch, fresh()).commit().unwrap();
        }
    }
    batch.commit().unwrap();
    let plain = t.elapsed().as_secs_f64();
    println!(
        "same bytes without templating or database: {plain:.1}s ({:.0} files/s); full rewrite / plain = {:.2}",
        list.len() as f64 / plain,
        secs / plain
    );
    println!(
        "| full site rewrite, {} packages, nothing changed | {secs:.1} s ({:.0}% of the plain write's speed) | plain write of the same bytes {plain:.1} s; target >= 30%, < 60 s for 100,000 |",
        c.projects,
        100.0 * plain / secs
    );
    println!(
        "| full site rewrite, {} packages, every page changed | {changed:.1} s, peak RSS {:.1} MiB ({:.0}% of the plain write's speed) | plain write into a new tree {plain:.1} s |",
        c.projects,
        changed_hwm as f64 / 1024.0,
        100.0 * plain / changed
    );
}

fn simple_index(names: usize, root: &Path) {
    println!("== simple index of {names} names");
    let tdb = TestDb::new();
    tdb.admin()
        .batch_execute(&format!(
            "INSERT INTO packages (package) SELECT 'name-' || md5(i::text) FROM generate_series(1, {names}) i; ANALYZE;"
        ))
        .unwrap();
    let mut db = tdb.database();
    let out = root.join("index");
    let _ = std::fs::remove_dir_all(&out);
    let mut web = Web::new(WebConfig::new(out.clone()));
    web.scribe().setup().unwrap();
    reset_hwm();
    let t = Instant::now();
    let n = web
        .scribe()
        .write_simple_index(&mut db, None, Utc::now())
        .unwrap();
    println!(
        "simple index and sitemaps: {n} names in {:.2}s, peak RSS {:.1} MiB",
        t.elapsed().as_secs_f64(),
        vm_hwm_kib() as f64 / 1024.0
    );
    println!(
        "| simple index of {n} names | {:.2} s, peak RSS {:.1} MiB | target < 2 s for 600,000 |",
        t.elapsed().as_secs_f64(),
        vm_hwm_kib() as f64 / 1024.0
    );
    let _ = &mut web;
}

use chrono::Utc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PIW_TEST_DSN").is_none() {
        let user = String::from_utf8(std::process::Command::new("id").arg("-un").output()?.stdout)?;
        // SAFETY: single-threaded at this point.
        unsafe {
            std::env::set_var(
                "PIW_TEST_DSN",
                format!(
                    "host=/var/run/postgresql user={} dbname=postgres",
                    user.trim()
                ),
            )
        };
    }
    let mut args = pico_args::Arguments::from_env();
    let _ = args.contains("--bench");
    let sizes: String = args
        .opt_value_from_str("--packages")?
        .unwrap_or_else(|| "10000,100000".to_owned());
    let names: usize = args.opt_value_from_str("--index-names")?.unwrap_or(600_000);
    let keep = args.contains("--keep");
    let root = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("bench-web");
    for size in sizes.split(',').filter(|s| !s.is_empty()) {
        rewrite(size.trim().parse()?, &root);
    }
    if names > 0 {
        simple_index(names, &root);
    }
    if !keep {
        let _ = std::fs::remove_dir_all(&root);
    }
    Ok(())
}
