//! piw-logger end to end: the real binary reads real access logs and
//! pushes to a real PULL socket on ipc; lumberjack (as the master's loop
//! drives it) writes the hits to a real database, and the tables hold
//! exactly what piwheels 0.23 would count.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;
use piwheels::master::lumberjack::{DRAIN_MAX, Lumberjack};
use piwheels::testing::TestDb;

const LOGGER: &str = env!("CARGO_BIN_EXE_piw-logger");

/// A small deterministic generator (no dependency on a random crate).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a line should become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A row in this table (index into TABLES).
    Row(usize),
    /// Sent by piw-logger, refused by lumberjack (too long for its column).
    Rejected,
    /// Well-formed, not counted.
    Ignored,
    /// Not in combined format.
    Bad,
}

const TABLES: [&str; 5] = [
    "downloads",
    "searches",
    "project_page_hits",
    "project_json_downloads",
    "web_page_hits",
];

fn pip_ua(version: &str, cpu: &str, py: &str) -> String {
    format!(
        r#"pip/{version} {{"ci":null,"cpu":"{cpu}","distro":{{"id":"bookworm","libc":{{"lib":"glibc","version":"2.36"}},"name":"Raspbian GNU/Linux","version":"12"}},"implementation":{{"name":"CPython","version":"{py}"}},"installer":{{"name":"pip","version":"{version}"}},"openssl_version":"OpenSSL 3.0.11 19 Sep 2023","python":"{py}","setuptools_version":"66.1.1","system":{{"name":"Linux","release":"6.1.0-rpi7-rpi-v8"}}}}"#
    )
}

fn uv_ua() -> String {
    r#"uv/0.4.18 {"installer":{"name":"uv","version":"0.4.18"},"python":"3.11.2","implementation":{"name":"CPython","version":"3.11.2"},"distro":{"name":"Debian GNU/Linux","version":"12","id":"bookworm","libc":{"lib":"glibc","version":"2.36"}},"system":{"name":"Linux","release":"6.6.31+rpt-rpi-v8"},"cpu":"aarch64","openssl_version":null,"setuptools_version":null,"rustc_version":null,"ci":null}"#.to_owned()
}

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux aarch64; rv:128.0) Gecko/20100101 Firefox/128.0";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/// Apache's escaping of a header value inside double quotes.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn line(ip: &str, when: &str, method: &str, path: &str, status: u16, ua: &str) -> String {
    let ua = if ua == "-" { "-".to_owned() } else { esc(ua) };
    format!(r#"{ip} - - [{when}] "{method} {path} HTTP/1.1" {status} 1234 "-" "{ua}""#)
}

/// The test log: `n` lines of every kind, with what each should become.
fn generate(n: usize, seed: u64) -> (String, Vec<Expect>) {
    let mut rng = Lcg(seed);
    let mut text = String::new();
    let mut expect = Vec::with_capacity(n);
    let junk_ua: String = (0..10_000)
        .map(|i| (b'A' + (i % 26) as u8) as char)
        .collect();
    for i in 0..n {
        let ip = if i % 3 == 0 {
            format!("2a00:1098:0:80:1000:3b:{:x}:1", i % 4096)
        } else {
            format!("192.0.2.{}", i % 250)
        };
        let when = format!(
            "{:02}/Mar/2024:{:02}:{:02}:{:02} +0000",
            1 + i % 28,
            i % 24,
            i % 60,
            (i * 7) % 60
        );
        let pkg = format!("pkg{}", rng.below(500));
        let whl = format!("/simple/{pkg}/{pkg}-1.{i}-cp311-cp311-linux_armv7l.whl");
        let pip = pip_ua("24.0", "armv7l", "3.11.2");
        let (l, e) = match rng.below(30) {
            0..=4 => (line(&ip, &when, "GET", &whl, 200, &pip), Expect::Row(0)),
            5 => (line(&ip, &when, "GET", &whl, 200, &uv_ua()), Expect::Row(0)),
            6 => (line(&ip, &when, "GET", &whl, 200, FIREFOX), Expect::Row(0)),
            7 => (
                line(&ip, &when, "GET", &whl, 200, "Wget/1.21.3"),
                Expect::Row(0),
            ),
            8 => (
                line(
                    &ip,
                    &when,
                    "GET",
                    &format!("/simple/broken/broken-{i}.whl"),
                    200,
                    "pip/evil {invalid JSON",
                ),
                Expect::Row(0),
            ),
            9 => (
                line(&ip, &when, "GET", &whl, 200, &format!("pip/1 {junk_ua}")),
                Expect::Row(0),
            ),
            10..=13 => (
                line(
                    &ip,
                    &when,
                    "GET",
                    &format!("/simple/Foo_Bar.Baz{}/", rng.below(50)),
                    200,
                    &pip,
                ),
                Expect::Row(1),
            ),
            14 => (
                line(&ip, &when, "GET", &format!("/simple/{pkg}/"), 200, &uv_ua()),
                Expect::Row(1),
            ),
            15 => (
                line(&ip, &when, "GET", "/simple/", 200, &pip),
                Expect::Ignored,
            ),
            16 => (
                line(&ip, &when, "GET", &format!("/simple/{pkg}/"), 200, FIREFOX),
                Expect::Ignored,
            ),
            17 => (
                line(&ip, &when, "GET", &format!("/project/{pkg}/"), 200, FIREFOX),
                Expect::Row(2),
            ),
            18 => (
                line(
                    &ip,
                    &when,
                    "GET",
                    &format!("/project/{pkg}/"),
                    200,
                    GOOGLEBOT,
                ),
                Expect::Row(2),
            ),
            19 => {
                let path = if i % 2 == 0 {
                    format!("/project/{pkg}/json/")
                } else {
                    format!("/project/{pkg}/json/index.json")
                };
                (
                    line(&ip, &when, "GET", &path, 200, "python-requests/2.31.0"),
                    Expect::Row(3),
                )
            }
            20 => (
                line(&ip, &when, "GET", "/project/", 200, FIREFOX),
                Expect::Ignored,
            ),
            21 => {
                let path = ["/", "/index.html", "/faq.html", "/packages.html"][i % 4];
                (line(&ip, &when, "GET", path, 200, FIREFOX), Expect::Row(4))
            }
            22 => (line(&ip, &when, "GET", "/", 200, &junk_ua), Expect::Row(4)),
            23 => (
                line(&ip, &when, "GET", "/robots.txt", 200, GOOGLEBOT),
                Expect::Ignored,
            ),
            24 => {
                let (m, s) = [("HEAD", 200), ("POST", 200), ("GET", 404), ("GET", 304)][i % 4];
                (line(&ip, &when, m, &whl, s, &pip), Expect::Ignored)
            }
            25 => (line(&ip, &when, "GET", "/", 200, "-"), Expect::Ignored),
            26 => (
                format!(r#"{ip} - - [{when}] "\x16\x03\x01\x02\x00\x01" 400 226 "-" "-""#),
                Expect::Ignored,
            ),
            27 => (
                line("crawler.example.com", &when, "GET", "/", 200, FIREFOX),
                Expect::Ignored,
            ),
            28 => (
                line(
                    &ip,
                    &when,
                    "GET",
                    "/a-page-name-that-is-much-longer-than-thirty.html",
                    200,
                    FIREFOX,
                ),
                Expect::Rejected,
            ),
            _ => {
                let junk = match i % 5 {
                    0 => "this is not an access log line".to_owned(),
                    1 => line(&ip, &when, "GET", "/", 200, FIREFOX)[..40].to_owned(),
                    2 => line(&ip, &when, "GET", "/", 200, FIREFOX).replace("+0000]", "+0000"),
                    3 => line(&ip, &when, "GET", "/", 200, FIREFOX).replace(" 200 ", " OK "),
                    _ => format!("{ip} - - [{when}] \"GET / HTTP/1.1\" 200 1 \"-\" \"unterminated"),
                };
                (junk, Expect::Bad)
            }
        };
        text.push_str(&l);
        text.push('\n');
        expect.push(e);
    }
    // A zone other than UTC, at a known time.
    text.push_str(&line(
        "192.0.2.1",
        "01/Mar/2024:12:00:00 +0200",
        "GET",
        "/stats.html",
        200,
        FIREFOX,
    ));
    text.push('\n');
    expect.push(Expect::Row(4));
    (text, expect)
}

fn sent(expect: &[Expect]) -> u64 {
    expect
        .iter()
        .filter(|e| matches!(e, Expect::Row(_) | Expect::Rejected))
        .count() as u64
}

fn rows(expect: &[Expect]) -> [i64; 5] {
    let mut r = [0; 5];
    for e in expect {
        if let Expect::Row(t) = e {
            r[*t] += 1;
        }
    }
    r
}

fn counts(db: &TestDb) -> [i64; 5] {
    let mut admin = db.admin();
    TABLES.map(|t| {
        admin
            .query_one(&format!("SELECT count(*) FROM {t}"), &[])
            .unwrap()
            .get(0)
    })
}

/// A PULL socket like the master's log queue. Its linger must not be 0:
/// libzmq discards the messages of a peer that has disconnected but which
/// the application has not read yet, after the linger period (at once with
/// 0), so a logger that finishes while we are busy writing would lose its
/// last hits. (-1, the default, keeps them until read.)
fn pull(ctx: &zmq::Context, addr: &str) -> zmq::Socket {
    let s = ctx.socket(zmq::PULL).unwrap();
    s.set_linger(-1).unwrap();
    s.bind(addr).unwrap();
    s
}

fn spawn_logger(args: &[&str], stderr: &Path, stdin: Stdio) -> Child {
    Command::new(LOGGER)
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .expect("start piw-logger")
}

/// Drives lumberjack the way the master's loop does until `want` frames
/// arrived and are written, then checks nothing more comes.
fn serve(
    socket: &zmq::Socket,
    lj: &mut Lumberjack,
    db: &mut piwheels::db::Database,
    want: u64,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    while lj.totals().received < want || lj.pending() > 0 {
        assert!(
            Instant::now() < deadline,
            "only {} of {want} hits arrived: {:?}",
            lj.totals().received,
            lj.totals()
        );
        socket.poll(zmq::POLLIN, 100).unwrap();
        while lj.drain(socket, DRAIN_MAX) > 0 {
            if lj.flush_due(Instant::now()) {
                lj.flush(db, Instant::now());
            }
        }
        if lj.flush_due(Instant::now()) {
            lj.flush(db, Instant::now());
        }
    }
    assert_eq!(
        socket.poll(zmq::POLLIN, 200).unwrap(),
        0,
        "more hits than expected"
    );
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "piw-logger did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ten_thousand_lines_land_in_the_right_tables() {
    let dir = TempDir::new("logger10k");
    let (text, expect) = generate(10_000, 7);
    assert_eq!(text.lines().count(), 10_001);
    let log = dir.path().join("access.log");
    std::fs::write(&log, &text).unwrap();
    let addr = format!("ipc://{}", dir.path().join("logger").display());
    let ctx = zmq::Context::new();
    let socket = pull(&ctx, &addr);
    let tdb = TestDb::new();
    let mut db = tdb.database();
    let mut lj = Lumberjack::new();

    let stderr = dir.path().join("stderr");
    // The console cuts lines at 120 characters, as piwheels does; the log
    // file (-l) keeps them whole.
    let log_file = dir.path().join("piw-logger.log");
    let mut child = spawn_logger(
        &[
            "-v",
            "-l",
            log_file.to_str().unwrap(),
            "--log-queue",
            &addr,
            log.to_str().unwrap(),
        ],
        &stderr,
        Stdio::null(),
    );
    serve(
        &socket,
        &mut lj,
        &mut db,
        sent(&expect),
        Duration::from_secs(120),
    );
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let console = std::fs::read_to_string(&stderr).unwrap();
    assert!(status.success(), "{status}: {console}");
    assert!(console.contains("skipped: "), "{console}");
    let err = std::fs::read_to_string(&log_file).unwrap();

    // Exactly the expected rows, table by table.
    let want = rows(&expect);
    assert!(want.iter().all(|&n| n > 100), "{want:?}");
    assert_eq!(counts(&tdb), want);
    let rejected = expect.iter().filter(|e| **e == Expect::Rejected).count() as u64;
    assert_eq!(lj.totals().invalid, rejected);

    // What piw-logger said about the lines it skipped.
    let bad = expect.iter().filter(|e| **e == Expect::Bad).count();
    let ignored = expect.iter().filter(|e| **e == Expect::Ignored).count();
    assert!(
        err.contains(&format!(
            "10001 lines: {} LOGDOWNLOAD, {} LOGSEARCH, {} LOGPROJECT, {} LOGJSON, {} LOGPAGE; \
             {ignored} ignored, {bad} bad, 0 dropped",
            want[0],
            want[1],
            want[2],
            want[3],
            want[4] as u64 + rejected
        )),
        "{err}"
    );
    assert!(err.contains("access.log:"), "{err}");
    assert!(err.contains("skipped: "), "{err}");
    assert!(
        err.contains("further bad lines are counted, not shown"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{bad} lines did not fit the log format")),
        "{err}"
    );

    // The values, spot-checked in the database.
    let mut admin = tdb.admin();
    let mut one = |sql: &str| -> i64 { admin.query_one(sql, &[]).unwrap().get(0) };
    let (pip, uv, broken) = (
        one(
            "SELECT count(*) FROM downloads WHERE installer_name = 'pip' AND arch = 'armv7l' \
             AND distro_name = 'Raspbian GNU/Linux' AND distro_version = '12' \
             AND os_name = 'Linux' AND os_version = '6.1.0-rpi7-rpi-v8' AND py_name = 'CPython' \
             AND py_version = '3.11.2' AND installer_version = '24.0' \
             AND setuptools_version = '66.1.1'",
        ),
        one(
            "SELECT count(*) FROM downloads WHERE installer_name = 'uv' AND arch = 'aarch64' \
             AND setuptools_version IS NULL",
        ),
        one(
            "SELECT count(*) FROM downloads WHERE filename LIKE 'broken-%' AND arch IS NULL \
             AND installer_name IS NULL AND py_name = 'CPython'",
        ),
    );
    assert!(pip > 100 && uv > 10 && broken > 10, "{pip} {uv} {broken}");
    assert_eq!(
        one("SELECT count(*) FROM searches WHERE package !~ '^(foo-bar-baz[0-9]+|pkg[0-9]+)$'"),
        0
    );
    assert!(one("SELECT count(*) FROM searches WHERE package ~ '^foo-bar-baz'") > 100);
    assert_eq!(
        one("SELECT count(*) FROM project_page_hits WHERE user_agent <> 'mozilla'"),
        0
    );
    assert_eq!(
        one("SELECT count(*) FROM project_json_downloads WHERE user_agent <> 'python-requests'"),
        0
    );
    assert_eq!(
        one("SELECT max(length(user_agent))::bigint FROM web_page_hits"),
        200
    );
    assert_eq!(
        one(
            "SELECT count(*) FROM web_page_hits WHERE page NOT IN ('home', 'faq', 'packages', 'stats')"
        ),
        0
    );
    assert_eq!(
        one("SELECT count(*) FROM web_page_hits WHERE page = 'stats' \
             AND accessed_at = '2024-03-01 10:00:00'"),
        1
    );
    assert!(one("SELECT count(*) FROM downloads WHERE family(accessed_by) = 6") > 100);
}

#[test]
fn stdin_gzip_and_unreadable_files() {
    let dir = TempDir::new("loggerio");
    let (text, expect) = generate(300, 11);
    let (gz_text, gz_expect) = generate(200, 12);
    let gz = dir.path().join("access.log.2.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(gz_text.as_bytes()).unwrap();
    enc.finish().unwrap();
    let addr = format!("ipc://{}", dir.path().join("logger").display());
    let ctx = zmq::Context::new();
    let socket = pull(&ctx, &addr);
    let tdb = TestDb::new();
    let mut db = tdb.database();
    let mut lj = Lumberjack::new();

    let stderr = dir.path().join("stderr");
    let missing = dir.path().join("missing.log");
    let mut child = spawn_logger(
        &[
            "--log-queue",
            &addr,
            "-",
            gz.to_str().unwrap(),
            missing.to_str().unwrap(),
        ],
        &stderr,
        Stdio::piped(),
    );
    {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
    }
    serve(
        &socket,
        &mut lj,
        &mut db,
        sent(&expect) + sent(&gz_expect),
        Duration::from_secs(60),
    );
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot read") && err.contains("missing.log"),
        "{err}"
    );
    let mut want = rows(&expect);
    for (w, g) in want.iter_mut().zip(rows(&gz_expect)) {
        *w += g;
    }
    assert_eq!(counts(&tdb), want);
}

#[test]
fn without_a_master() {
    let dir = TempDir::new("loggernomaster");
    let addr = format!("ipc://{}", dir.path().join("nobody").display());
    let (text, _) = generate(50, 3);
    let log = dir.path().join("access.log");
    std::fs::write(&log, &text).unwrap();

    // Without --drop: nobody listens, so it says so and fails.
    let stderr = dir.path().join("stderr1");
    let mut child = spawn_logger(
        &["--log-queue", &addr, log.to_str().unwrap()],
        &stderr,
        Stdio::null(),
    );
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("no master at") && err.contains("is piw-master running?"),
        "{err}"
    );

    // With --drop (a piped log): it never blocks; what does not fit in the
    // queue is dropped after 10 ms each, and it says how many.
    let pages: String = (0..1100)
        .map(|i| {
            line(
                "192.0.2.1",
                "01/Mar/2024:12:00:00 +0000",
                "GET",
                &format!("/p{i}.html"),
                200,
                FIREFOX,
            ) + "\n"
        })
        .collect();
    let stderr = dir.path().join("stderr2");
    let mut child = spawn_logger(
        &["-v", "--drop", "--log-queue", &addr],
        &stderr,
        Stdio::piped(),
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(pages.as_bytes())
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(60));
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert!(status.success(), "{err}");
    assert!(err.contains("dropping log entries"), "{err}");
    let dropped: u64 = err
        .split("because the master's log queue was full")
        .next()
        .and_then(|s| s.rsplit("dropped ").next())
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no drop count in {err}"));
    assert!(dropped > 0 && dropped < 1100, "{dropped}");
}

#[test]
fn usage_errors_exit_2() {
    let out = Command::new(LOGGER)
        .args(["--format", "%h %Q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown directive %Q"));
    let out = Command::new(LOGGER).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--drop"));
}
