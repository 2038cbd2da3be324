//! `cargo bench --bench pypi [-- OPTIONS]`: how fast cloud_gazer ingests
//! PyPI's changelog, and in how much memory.
//!
//! Not a test. Three measurements:
//!
//! 1. **Ingest**: N changelog events (default 100,000, PyPI's mix: new
//!    projects, releases with source and binary files, other actions,
//!    yanks, removals, non-canonical names) served by the fake PyPI in a
//!    *separate process* (this program re-run with `--serve`, so its memory
//!    is not counted), followed into an empty database by a real
//!    `CloudGazer` through real HTTP, as fast as it goes (no 10 s pause
//!    between polls). Reports events/s and the peak RSS (VmHWM) of this
//!    process during the ingest.
//! 2. **Parse alone**: the XML-RPC parser over an in-memory response of
//!    50,000 events (in a fresh process, for a clean peak RSS).
//! 3. **Bare INSERTs** through the same driver, for comparison: plain
//!    `INSERT INTO packages` in transactions of 1000, and the stored
//!    function `add_new_package` through our data layer, batched the same.
//!
//! options: [--events N] [--chunk N] [--page N]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use piwheels::db::Database;
use piwheels::fake_pypi::harness::run_to_serial;
use piwheels::fake_pypi::{Event, FakePypi, changelog_xml};
use piwheels::master::cloud_gazer::{CloudGazer, CloudGazerConfig};
use piwheels::master::tasks::{SkipQueue, WebQueue, WebRequest};
use piwheels::testing::TestDb;

/// (VmHWM, VmRSS) in KiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Resets VmHWM to the current RSS (Linux: clear_refs 5).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// PyPI's changelog, roughly: for each release a "new release", an sdist,
/// a wheel (which the de-dup cache drops); a new project every other
/// release, some with non-canonical names; now and then a yank, a removed
/// release or project, a role change. One event a second.
fn synthetic(n: usize, start: i64) -> Vec<Event> {
    let mut out = Vec::with_capacity(n);
    let mut release = 0usize;
    let mut t = start;
    let mut push = |out: &mut Vec<Event>, name: &str, version: Option<String>, action: String| {
        out.push(Event {
            name: name.to_owned(),
            version,
            timestamp: t,
            action,
            serial: 0,
        });
        t += 1;
    };
    while out.len() < n {
        let project = release / 2;
        let name = if project % 5 == 0 {
            format!("Bench_Project.{project}")
        } else {
            format!("bench-project-{project}")
        };
        let version = format!("{}.{}", release % 2, release % 7);
        if release % 2 == 0 {
            push(&mut out, &name, None, "create".into());
        }
        push(&mut out, &name, Some(version.clone()), "new release".into());
        push(
            &mut out,
            &name,
            Some(version.clone()),
            format!("add source file {name}-{version}.tar.gz"),
        );
        push(
            &mut out,
            &name,
            Some(version.clone()),
            format!("add py3 file {name}-{version}-py3-none-any.whl"),
        );
        match release % 50 {
            7 => push(
                &mut out,
                &name,
                Some(version.clone()),
                "yank release".into(),
            ),
            13 => push(&mut out, &name, None, "add Owner someone".into()),
            29 => push(
                &mut out,
                &name,
                Some(version.clone()),
                "remove release".into(),
            ),
            41 => push(&mut out, &name, None, "remove project".into()),
            _ => {}
        }
        release += 1;
    }
    out.truncate(n);
    out
}

/// `--serve N PAGE`: the fake PyPI for the ingest, in its own process.
/// Prints "URL HEARTBEAT_SERIAL", serves until stdin closes.
fn serve(n: usize, page: usize) {
    let fake = FakePypi::builder().page(page).start().expect("fake PyPI");
    fake.add_events(synthetic(n, piwheels::fake_pypi::START_TIME));
    let heartbeat = fake.flush_window();
    println!("{} {heartbeat}", fake.xmlrpc_url());
    let _ = std::io::stdout().flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

#[derive(Default)]
struct Counting {
    web: u64,
    removals: u64,
    skips: u64,
}

impl WebQueue for Counting {
    fn request(&mut self, req: WebRequest, _db: &mut Database) {
        self.web += 1;
        if matches!(req, WebRequest::DelPkg(_) | WebRequest::DelVer(..)) {
            self.removals += 1;
        }
    }
}

impl SkipQueue for Counting {
    fn skip_package(&mut self, _: &str) {
        self.skips += 1;
    }
    fn skip_version(&mut self, _: &str, _: &str) {
        self.skips += 1;
    }
}

fn ingest(n: usize, chunk: usize, page: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--serve", &n.to_string(), &page.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let url = parts
        .next()
        .ok_or("the fake PyPI did not start")?
        .to_owned();
    let heartbeat: i64 = parts.next().ok_or("no serial")?.parse()?;

    let tdb = TestDb::new();
    let mut db = tdb.database();
    let mut config = CloudGazerConfig::new(&url, &url);
    config.poll_interval = Duration::ZERO;
    config.chunk = chunk;
    let ctx = zmq::Context::new();
    let (hwm0, rss0) = memory();
    reset_peak();
    let mut sinks = Counting::default();
    let mut skips = Counting::default();
    let start = Instant::now();
    let mut gazer = CloudGazer::new(config, &ctx, &mut db)?;
    let done = run_to_serial(
        &mut gazer,
        &mut db,
        &mut sinks,
        &mut skips,
        heartbeat,
        Duration::from_secs(900),
    );
    let took = start.elapsed();
    let (hwm, rss) = memory();
    let stats = gazer.stats();
    gazer.shutdown();
    drop(child.stdin.take());
    let _ = child.wait();
    if !done {
        return Err(format!("ingest did not finish: {stats:?}").into());
    }
    let mut admin = tdb.admin();
    let mut count =
        |sql: &str| -> i64 { admin.query_one(sql, &[]).map(|r| r.get(0)).unwrap_or(-1) };
    let packages = count("SELECT count(*) FROM packages");
    let versions = count("SELECT count(*) FROM versions");
    let names = count("SELECT count(*) FROM package_names");
    println!("ingest of {n} changelog events into an empty database (chunk {chunk}, page {page}):");
    println!(
        "  {:.1}s, {:.0} events/s ({} applied after the de-dup cache, {} web requests, {} removals)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        stats.applied,
        sinks.web,
        sinks.removals
    );
    println!(
        "  database: {packages} packages, {versions} versions, {names} names; serial {}",
        stats.serial
    );
    println!(
        "  memory: peak RSS during the ingest {} (before: RSS {}, peak {}; after: RSS {})",
        mib(hwm),
        mib(rss0),
        mib(hwm0),
        mib(rss)
    );
    println!(
        "| PyPI ingest of {n} events | {:.0} events/s, peak RSS {} | target > 5,000/s and < 32 MiB |",
        n as f64 / took.as_secs_f64(),
        mib(hwm)
    );
    Ok(())
}

fn parse_alone() {
    let events = synthetic(50_000, 1_600_000_000);
    let events: Vec<Event> = events
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e.serial = 1_000_001 + i as i64;
            e
        })
        .collect();
    let xml = changelog_xml(&events);
    drop(events);
    let (_, rss0) = memory();
    reset_peak();
    let rounds = 5;
    let start = Instant::now();
    let mut kept = 0;
    for _ in 0..rounds {
        let mut out = Vec::new();
        piwheels::pypi::xmlrpc::parse_changelog(&xml[..], |e| out.push(e)).expect("parses");
        kept = out.len();
    }
    let took = start.elapsed() / rounds;
    let (hwm, _) = memory();
    println!(
        "XML-RPC parse alone (50,000 events, {:.1} MB of XML, in memory):",
        xml.len() as f64 / 1e6
    );
    println!(
        "  {:.0} ms per response, {:.0} events/s, {:.0} MB/s; {kept} entries kept; \
         peak RSS {} with the document in memory ({} before parsing)",
        took.as_secs_f64() * 1000.0,
        50_000.0 / took.as_secs_f64(),
        xml.len() as f64 / 1e6 / took.as_secs_f64(),
        mib(hwm),
        mib(rss0)
    );
}

fn bare_inserts(n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let tdb = TestDb::new();
    let mut admin = tdb.admin();
    let start = Instant::now();
    let stmt = admin.prepare("INSERT INTO packages (package) VALUES ($1)")?;
    for batch in 0..n.div_ceil(1000) {
        let mut tx = admin.transaction()?;
        for i in batch * 1000..((batch + 1) * 1000).min(n) {
            tx.execute(&stmt, &[&format!("bare-{i}")])?;
        }
        tx.commit()?;
    }
    let plain = start.elapsed();
    let mut db = tdb.database();
    let start = Instant::now();
    for batch in 0..n.div_ceil(1000) {
        db.transaction(|db| {
            for i in batch * 1000..((batch + 1) * 1000).min(n) {
                db.add_new_package(&format!("func-{i}"), "", "")?;
            }
            Ok(())
        })?;
    }
    let func = start.elapsed();
    println!(
        "| bare INSERTs, same driver, transactions of 1000 | {:.0} rows/s (add_new_package: {:.0}/s) | the ingest's ceiling |",
        n as f64 / plain.as_secs_f64(),
        n as f64 / func.as_secs_f64()
    );
    println!("for comparison, {n} rows in transactions of 1000, same driver:");
    println!(
        "  plain INSERT: {:.0} rows/s; add_new_package() through the data layer: {:.0} rows/s",
        n as f64 / plain.as_secs_f64(),
        n as f64 / func.as_secs_f64()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = pico_args::Arguments::from_env();
    if args.contains("--parse") {
        parse_alone();
        return Ok(());
    }
    if args.contains("--serve") {
        let rest = args.finish();
        let n = rest
            .first()
            .and_then(|s| s.to_str()?.parse().ok())
            .unwrap_or(100_000);
        let page = rest
            .get(1)
            .and_then(|s| s.to_str()?.parse().ok())
            .unwrap_or(50_000);
        serve(n, page);
        return Ok(());
    }
    // `cargo bench` passes --bench.
    let _ = args.contains("--bench");
    let n: usize = args.opt_value_from_str("--events")?.unwrap_or(100_000);
    let chunk: usize = args.opt_value_from_str("--chunk")?.unwrap_or(1000);
    let page: usize = args.opt_value_from_str("--page")?.unwrap_or(50_000);
    ingest(n, chunk, page)?;
    // In a fresh process, so the ingest's heap does not hide its memory.
    let status = Command::new(std::env::current_exe()?)
        .arg("--parse")
        .status()?;
    if !status.success() {
        return Err("the parse benchmark failed".into());
    }
    bare_inserts(n)?;
    Ok(())
}
