//! `cargo bench --bench logger [-- --lines N]`: how many web-server hits
//! per second go from an access log through piw-logger and lumberjack into
//! PostgreSQL (target: over 10,000/s), and how long the master's poll loop
//! is kept busy per turn while they do (it must still answer slaves within
//! 50 ms). Not a test.
//!
//! Three runs over the same generated log (default 200,000 lines, every
//! one a hit: 60% downloads with pip's or uv's JSON user agent, 20%
//! searches, 10% project pages, 5% project JSON, 5% pages):
//! 1. piw-logger alone, into a PULL socket that only counts;
//! 2. lumberjack and the database alone, fed the encoded messages in
//!    batches of `DRAIN_MAX` with one flush (one transaction) per batch;
//! 3. end to end: the real piw-logger binary → ipc PULL → lumberjack, driven
//!    the way the master's loop does (poll, drain up to `DRAIN_MAX`, flush),
//!    timed from the logger's start until the last row is committed.
//!
//! The database comes from `piwheels::testing` (`PIW_TEST_DSN` picks the
//! cluster) and is dropped at the end.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;
use piwheels::logger::{LogFormat, Outcome, format::COMBINED, process_line};
use piwheels::master::lumberjack::{DRAIN_MAX, Flush, Lumberjack};
use piwheels::protocol::WireMessage;
use piwheels::testing::TestDb;

const LOGGER: &str = env!("CARGO_BIN_EXE_piw-logger");

fn generate(n: usize) -> String {
    let pip = |v: &str| {
        format!(
            r#"pip/{v} {{\"ci\":null,\"cpu\":\"armv7l\",\"distro\":{{\"id\":\"bookworm\",\"libc\":{{\"lib\":\"glibc\",\"version\":\"2.36\"}},\"name\":\"Raspbian GNU/Linux\",\"version\":\"12\"}},\"implementation\":{{\"name\":\"CPython\",\"version\":\"3.11.2\"}},\"installer\":{{\"name\":\"pip\",\"version\":\"{v}\"}},\"openssl_version\":\"OpenSSL 3.0.11 19 Sep 2023\",\"python\":\"3.11.2\",\"setuptools_version\":\"66.1.1\",\"system\":{{\"name\":\"Linux\",\"release\":\"6.1.0-rpi7-rpi-v8\"}}}}"#
        )
    };
    let uv = r#"uv/0.4.18 {\"installer\":{\"name\":\"uv\",\"version\":\"0.4.18\"},\"python\":\"3.11.2\",\"implementation\":{\"name\":\"CPython\",\"version\":\"3.11.2\"},\"distro\":{\"name\":\"Debian GNU/Linux\",\"version\":\"12\",\"id\":\"bookworm\",\"libc\":{\"lib\":\"glibc\",\"version\":\"2.36\"}},\"system\":{\"name\":\"Linux\",\"release\":\"6.6.31+rpt-rpi-v8\"},\"cpu\":\"aarch64\",\"openssl_version\":null,\"setuptools_version\":null,\"rustc_version\":null,\"ci\":null}"#;
    let firefox = "Mozilla/5.0 (X11; Linux aarch64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let mut out = String::with_capacity(n * 700);
    for i in 0..n {
        let ip = format!("192.0.{}.{}", (i / 250) % 250, i % 250);
        let when = format!(
            "{:02}/Mar/2024:{:02}:{:02}:{:02} +0000",
            1 + i % 28,
            i % 24,
            i % 60,
            (i * 7) % 60
        );
        let pkg = format!("package-{}", i % 5000);
        let (path, ua) = match i % 20 {
            0..=10 => (
                format!(
                    "/simple/{pkg}/{pkg}-1.{}-cp311-cp311-linux_armv7l.whl",
                    i % 7
                ),
                pip("24.0"),
            ),
            11 => (
                format!("/simple/{pkg}/{pkg}-1.0-cp311-cp311-linux_aarch64.whl"),
                uv.to_owned(),
            ),
            12..=15 => (format!("/simple/{pkg}/"), pip("23.0.1")),
            16 | 17 => (format!("/project/{pkg}/"), firefox.to_owned()),
            18 => (
                format!("/project/{pkg}/json/"),
                "python-requests/2.31".to_owned(),
            ),
            _ => ("/".to_owned(), firefox.to_owned()),
        };
        out.push_str(&format!(
            "{ip} - - [{when}] \"GET {path} HTTP/1.1\" 200 4321 \"-\" \"{ua}\"\n"
        ));
    }
    out
}

fn rate(n: u64, d: Duration) -> String {
    format!(
        "{n} in {:.2}s ({:.0}/s)",
        d.as_secs_f64(),
        n as f64 / d.as_secs_f64()
    )
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn pull(ctx: &zmq::Context, addr: &str) -> zmq::Socket {
    let s = ctx.socket(zmq::PULL).unwrap();
    s.set_linger(-1).unwrap();
    s.bind(addr).unwrap();
    s
}

fn spawn_logger(addr: &str, log: &std::path::Path) -> std::process::Child {
    Command::new(LOGGER)
        .args(["-q", "--log-queue", addr, log.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn table_rows(db: &TestDb) -> i64 {
    db.admin()
        .query_one(
            "SELECT (SELECT count(*) FROM downloads) + (SELECT count(*) FROM searches) \
             + (SELECT count(*) FROM project_page_hits) \
             + (SELECT count(*) FROM project_json_downloads) \
             + (SELECT count(*) FROM web_page_hits)",
            &[],
        )
        .unwrap()
        .get(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = pico_args::Arguments::from_env();
    let _ = args.contains("--bench");
    let lines: usize = args.opt_value_from_str("--lines")?.unwrap_or(200_000);
    let dir = TempDir::new("bench-logger");
    let text = generate(lines);
    let log = dir.path().join("access.log");
    std::fs::write(&log, &text)?;
    let format = LogFormat::new(COMBINED)?;
    let frames: Vec<Vec<u8>> = text
        .lines()
        .filter_map(|l| match process_line(&format, l) {
            Outcome::Send(m) => Some(m.encode()),
            _ => None,
        })
        .collect();
    assert_eq!(frames.len(), lines, "every generated line should be a hit");
    let n = lines as u64;
    println!("piw-logger → lumberjack → PostgreSQL, {lines} hits");

    // 1. The logger alone.
    let ctx = zmq::Context::new();
    let addr = format!("ipc://{}", dir.path().join("count").display());
    let socket = pull(&ctx, &addr);
    let start = Instant::now();
    let mut child = spawn_logger(&addr, &log);
    let mut got = 0u64;
    while got < n {
        socket.poll(zmq::POLLIN, 1000).expect("poll");
        while socket.recv_bytes(zmq::DONTWAIT).is_ok() {
            got += 1;
        }
    }
    let t_logger = start.elapsed();
    child.wait()?;
    println!(
        "  piw-logger alone (parse, classify, send): {}",
        rate(n, t_logger)
    );

    // 2. Lumberjack and the database alone.
    let tdb = TestDb::new();
    let mut db = tdb.database();
    let mut lj = Lumberjack::new();
    let mut flushes = Vec::new();
    let start = Instant::now();
    for chunk in frames.chunks(DRAIN_MAX) {
        for f in chunk {
            lj.on_frame(f);
        }
        let t = Instant::now();
        match lj.flush(&mut db, t) {
            Flush::Written(_) => flushes.push(t.elapsed()),
            other => panic!("flush failed: {other:?}"),
        }
    }
    let t_db = start.elapsed();
    assert_eq!(lj.totals().written_total(), n);
    println!(
        "  lumberjack + database ({} hits per transaction): {}; flush p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        DRAIN_MAX,
        rate(n, t_db),
        percentile(&mut flushes, 0.5).as_secs_f64() * 1e3,
        percentile(&mut flushes, 0.99).as_secs_f64() * 1e3,
        percentile(&mut flushes, 1.0).as_secs_f64() * 1e3,
    );
    drop(db);
    drop(tdb);

    // 3. End to end, as the master's loop drives lumberjack.
    let tdb = TestDb::new();
    let mut db = tdb.database();
    let mut lj = Lumberjack::new();
    let addr = format!("ipc://{}", dir.path().join("logger").display());
    let socket = pull(&ctx, &addr);
    let mut turns = Vec::new();
    let start = Instant::now();
    let mut child = spawn_logger(&addr, &log);
    while lj.totals().written_total() < n {
        let wait = match lj.next_deadline(Instant::now()) {
            Some(_) => 0,
            None => 1000,
        };
        socket.poll(zmq::POLLIN, wait).expect("poll");
        let turn = Instant::now();
        lj.drain(&socket, DRAIN_MAX);
        if lj.flush_due(Instant::now()) {
            if let Flush::Failed { error, .. } = lj.flush(&mut db, Instant::now()) {
                panic!("flush failed: {error}");
            }
        }
        turns.push(turn.elapsed());
    }
    let t_all = start.elapsed();
    child.wait()?;
    assert_eq!(table_rows(&tdb), n as i64);
    let t = lj.totals();
    println!(
        "  end to end: {}; {} transactions ({:.0} hits each), {} round trips",
        rate(n, t_all),
        t.transactions,
        n as f64 / t.transactions as f64,
        t.round_trips
    );
    println!(
        "  poll-loop turn (drain up to {} + flush): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        DRAIN_MAX,
        percentile(&mut turns, 0.5).as_secs_f64() * 1e3,
        percentile(&mut turns, 0.99).as_secs_f64() * 1e3,
        percentile(&mut turns, 1.0).as_secs_f64() * 1e3,
    );
    println!(
        "| piw-logger → lumberjack → PostgreSQL | {} (loop turn p99 {:.1} ms) | target > 10,000 hits/s, turns < 50 ms |",
        rate(n, t_all),
        percentile(&mut turns, 0.99).as_secs_f64() * 1e3
    );
    Ok(())
}
