//! Shared by the web tests: a seeded database, scratch directories, a
//! small static HTTP server (with PEP 691 content negotiation and a request
//! log), wheels built on the spot, and a headless Chromium driven over the
//! DevTools protocol.

#![allow(dead_code)]

pub mod browser;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use piwheels::db::{BuildLog, BuiltFile, Database};
use piwheels::master::web::{Web, WebConfig};
use piwheels::testing::TestDb;

/// Makes sure tests find the cluster the way scripts/test points them to.
pub fn test_dsn() {
    if std::env::var_os("PIW_TEST_DSN").is_none() {
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned();
        // SAFETY: tests set it before any thread reads the environment.
        unsafe {
            std::env::set_var(
                "PIW_TEST_DSN",
                format!("host=/var/run/postgresql user={user} dbname=postgres"),
            )
        };
    }
}

/// A scratch directory under the target directory (kept on failure for
/// inspection, replaced on the next run).
pub fn scratch(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = target_dir().join("web-tests").join(format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Cargo's target directory (for artifacts such as screenshots).
pub fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target")
}

/// The moment every seeded page is written at.
pub fn wall() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
}

/// The web task over `out`, with fixed settings.
pub fn web(out: &Path) -> Web {
    Web::new(WebConfig {
        output_path: out.to_path_buf(),
        dev_mode: false,
        base_url: "https://wheels.example.org/".into(),
        title: "Example wheels".into(),
        issues_url: "https://github.com/example/packages/issues".into(),
    })
}

pub fn at(days: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::days(days)
}

/// A wheel's record for `log_build`.
pub fn wheel(
    package: &str,
    version: &str,
    abi: &str,
    requires_python: Option<&str>,
    deps: &[(&str, &str)],
) -> BuiltFile {
    let tag = package.replace('-', "_");
    let (py, platform) = if abi == "none" {
        ("py3", "any")
    } else {
        (abi.trim_end_matches('m'), "linux_armv7l")
    };
    BuiltFile {
        filename: format!("{tag}-{version}-{py}-{abi}-{platform}.whl"),
        filesize: 12_345 + version.len() as i64,
        filehash: {
            use sha2::{Digest, Sha256};
            Sha256::digest(format!("{tag}-{version}-{abi}").as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        },
        package_tag: tag,
        package_version_tag: version.into(),
        py_version_tag: py.into(),
        abi_tag: abi.into(),
        platform_tag: platform.into(),
        requires_python: requires_python.map(str::to_owned),
        location: "/simple".into(),
        dependencies: deps
            .iter()
            .map(|(t, d)| (t.to_string(), d.to_string()))
            .collect(),
    }
}

pub fn build(
    db: &mut Database,
    package: &str,
    version: &str,
    abi: &str,
    files: Vec<BuiltFile>,
) -> i32 {
    db.log_build(&BuildLog {
        package: package.into(),
        version: version.into(),
        built_by: 1,
        duration: Duration::from_secs(90),
        abi_tag: abi.into(),
        status: !files.is_empty(),
        files,
    })
    .unwrap()
}

/// The awkward name of the seed: every character HTML cares about.
pub const NASTY: &str = "a<b>&\"c'";

/// Seeds the database with the cases the golden tests cover:
///
/// * `foo`: versions that are PEP 440 and not (sorted like 0.23), a
///   pre-release, a yanked release, a skipped one, a pending one, builds
///   that failed and succeeded on several ABIs, apt and pip dependencies,
///   Requires-Python that needs escaping, and two aliases;
/// * `a<b>&"c'` with a description full of markup;
/// * `empty`, with no versions, and `../evil`, whose name is unsafe.
pub fn seed(tdb: &TestDb) -> Database {
    let mut admin = tdb.admin();
    admin
        .batch_execute("INSERT INTO build_abis (abi_tag) VALUES ('cp37m'), ('cp39'), ('cp311')")
        .unwrap();
    let mut db = tdb.database();
    db.add_new_package("foo", "", "The foo package <b>bold</b>")
        .unwrap();
    db.add_package_name("foo", "Foo", Some(at(0))).unwrap();
    db.add_package_name("foo", "FOO_", Some(at(1))).unwrap();
    for (i, v) in ["0.9-SNAPSHOT", "1.0", "1.0.post1", "1.5", "1.10", "2.0b1"]
        .iter()
        .enumerate()
    {
        db.add_new_package_version("foo", v, Some(at(10 * i as i64)), "")
            .unwrap();
    }
    db.skip_package_version("foo", "0.9-SNAPSHOT", "binary only")
        .unwrap();
    build(
        &mut db,
        "foo",
        "1.0",
        "cp37m",
        vec![wheel(
            "foo",
            "1.0",
            "cp37m",
            Some(">=3.7"),
            &[("apt", "libfoo1"), ("apt", "libbar2"), ("pip", "numpy")],
        )],
    );
    build(&mut db, "foo", "1.0", "cp39", vec![]);
    build(
        &mut db,
        "foo",
        "1.5",
        "cp37m",
        vec![wheel("foo", "1.5", "none", None, &[])],
    );
    db.yank_version("foo", "1.5").unwrap();
    build(
        &mut db,
        "foo",
        "1.10",
        "cp37m",
        vec![wheel(
            "foo",
            "1.10",
            "cp37m",
            Some("<4,>=3.7"),
            &[("apt", "libfoo1")],
        )],
    );
    build(
        &mut db,
        "foo",
        "1.10",
        "cp39",
        vec![wheel("foo", "1.10", "cp39", Some("<4,>=3.7"), &[])],
    );
    build(
        &mut db,
        "foo",
        "2.0b1",
        "cp311",
        vec![wheel("foo", "2.0b1", "cp311", None, &[])],
    );

    db.add_new_package(NASTY, "", "<script>alert(\"x\")</script> & more")
        .unwrap();
    db.add_package_name(NASTY, "A<B>&\"C'", Some(at(0)))
        .unwrap();
    db.add_new_package_version(NASTY, "1.0", Some(at(3)), "")
        .unwrap();
    let mut f = wheel(NASTY, "1.0", "none", Some("\">=3\"<x>"), &[("pip", "foo")]);
    f.filename = "a_b_c-1.0-py3-none-any.whl".into();
    build(&mut db, NASTY, "1.0", "cp37m", vec![f]);

    db.add_new_package("empty", "", "").unwrap();
    db.add_new_package("../evil", "", "tries to escape")
        .unwrap();
    db
}

/// Writes every seeded package's pages (BOTH for each, flushed), the
/// homepage and the search index.
pub fn write_site(web: &mut Web, db: &mut Database, out: &Path) {
    use piwheels::master::big_brother::SitePages;
    use piwheels::master::tasks::WebRequest;
    let t0 = Instant::now();
    web.start(db, t0, wall()).unwrap();
    for p in ["foo", NASTY, "empty", "../evil"] {
        web.request_at(WebRequest::Both(p.into()), db, t0, wall());
    }
    let later = t0 + Duration::from_secs(61);
    while web.next_deadline().is_some_and(|d| d <= later) {
        web.on_timer(later, wall(), db);
    }
    let mut stats = piwheels::protocol::MasterStats {
        timestamp: wall(),
        packages_built: 2,
        builds_last_hour: vec![],
        builds_time: piwheels::protocol::TimeDelta::ZERO,
        builds_size: 0,
        builds_pending: vec![],
        new_last_hour: 0,
        files_count: 6,
        downloads_last_hour: 0,
        downloads_last_month: 1234,
        downloads_all: 1_234_567,
        disk_size: 0,
        disk_free: 0,
        mem_size: 0,
        mem_free: 0,
        swap_size: 0,
        swap_free: 0,
        load_average: 0.0,
        cpu_temp: 0.0,
    };
    stats.timestamp = wall();
    web.homepage(&stats, wall());
    web.search_index(db);
    assert!(out.join("index.html").exists());
}

/// A static HTTP server on 127.0.0.1 for a directory, in a thread. It
/// serves `index.json` for a directory when the request's Accept header
/// prefers PEP 691's JSON (as docs/web-server.md sets up Apache and nginx
/// to do) and `index.html` otherwise, serves `.txt.gz` logs with
/// `Content-Encoding: gzip`, and logs every request as "METHOD PATH".
pub struct Server {
    pub port: u16,
    pub log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(root: &Path) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (root, log2, stop2) = (root.to_path_buf(), log.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: a test server never outlives ten minutes.
            let deadline = Instant::now() + Duration::from_secs(600);
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (root, log) = (root.clone(), log2.clone());
                        std::thread::spawn(move || serve(stream, &root, &log));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => break,
                }
            }
        });
        Server {
            port,
            log,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// q-value the Accept header gives the first matching type.
fn quality(accept: &str, types: &[&str]) -> f32 {
    let mut best: f32 = 0.0;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let t = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .next()
            .and_then(|q| q.parse().ok())
            .unwrap_or(1.0);
        if types.contains(&t.as_str()) {
            best = best.max(q);
        }
    }
    best
}

fn serve(mut stream: TcpStream, root: &Path, log: &Mutex<Vec<String>>) {
    use std::os::unix::ffi::OsStrExt;
    stream.set_nonblocking(false).ok();
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut accept = String::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("accept") {
                accept = v.trim().to_owned();
            }
        }
    }
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
    let path = target.split(['?', '#']).next().unwrap_or("/");
    log.lock().unwrap().push(format!("{method} {path}"));
    let rel = percent_decode(path.trim_start_matches('/'));
    let rel = Path::new(std::ffi::OsStr::from_bytes(&rel));
    let respond = |stream: &mut TcpStream, status: &str, headers: &str, body: &[u8]| {
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
            body.len()
        );
        if method != "HEAD" {
            let _ = stream.write_all(body);
        }
    };
    if rel
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return respond(&mut stream, "404 Not Found", "", b"not found");
    }
    let mut file = root.join(rel);
    let ctype;
    let mut extra = String::new();
    if file.is_dir() {
        if !path.ends_with('/') {
            return respond(
                &mut stream,
                "301 Moved Permanently",
                &format!("Location: {path}/\r\n"),
                b"",
            );
        }
        let json = quality(&accept, &["application/vnd.pypi.simple.v1+json"]);
        let html = quality(
            &accept,
            &[
                "application/vnd.pypi.simple.v1+html",
                "text/html",
                "*/*",
                "text/*",
            ],
        );
        extra.push_str("Vary: Accept\r\n");
        if json > html && file.join("index.json").exists() {
            file = file.join("index.json");
            ctype = "application/vnd.pypi.simple.v1+json";
        } else {
            file = file.join("index.html");
            ctype = "text/html; charset=utf-8";
        }
    } else {
        let name = file.to_string_lossy();
        ctype = if name.ends_with(".html") {
            "text/html; charset=utf-8"
        } else if name.ends_with(".json") {
            "application/json"
        } else if name.ends_with(".css") {
            "text/css"
        } else if name.ends_with(".js") {
            "text/javascript"
        } else if name.ends_with(".svg") {
            "image/svg+xml"
        } else if name.ends_with(".txt.gz") {
            extra.push_str("Content-Encoding: gzip\r\n");
            "text/plain; charset=utf-8"
        } else if name.ends_with(".xml") {
            "application/xml"
        } else {
            "application/octet-stream"
        };
    }
    let mut body = Vec::new();
    match std::fs::File::open(&file).and_then(|mut f| f.read_to_end(&mut body)) {
        Ok(_) => respond(
            &mut stream,
            "200 OK",
            &format!("Content-Type: {ctype}\r\n{extra}"),
            &body,
        ),
        Err(_) => respond(&mut stream, "404 Not Found", "", b"not found"),
    }
}

/// Builds a pure-Python wheel with Python's zipfile (a real wheel: WHEEL,
/// METADATA and a RECORD with hashes), returns (file name, METADATA).
pub fn make_wheel(dir: &Path, name: &str, version: &str, requires: &[&str]) -> (String, String) {
    let script = r#"
import base64, hashlib, sys, zipfile
out, name, version = sys.argv[1:4]
requires = sys.argv[4:]
mod = name.replace('-', '_')
dist = f"{mod}-{version}.dist-info"
metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: test package {name}\nRequires-Python: >=3.7\n"
metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
files = {
    f"{mod}/__init__.py": f"VALUE = {version!r}\n",
    f"{dist}/METADATA": metadata,
    f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: piwheels-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
for path, text in files.items():
    data = text.encode()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record.append(f"{path},sha256={digest},{len(data)}")
record.append(f"{dist}/RECORD,,")
files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
fname = f"{mod}-{version}-py3-none-any.whl"
with zipfile.ZipFile(f"{out}/{fname}", "w", zipfile.ZIP_DEFLATED) as z:
    for path, text in files.items():
        z.writestr(path, text)
print(fname)
sys.stdout.write(metadata)
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .arg(name)
        .arg(version)
        .args(requires)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (fname, metadata) = text.split_once('\n').unwrap();
    (fname.to_owned(), metadata.to_owned())
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let data = std::fs::read(path).unwrap();
    Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
