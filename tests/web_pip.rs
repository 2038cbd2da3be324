//! Real clients: pip installs from the site the web task wrote, served on
//! 127.0.0.1, through the HTML pages (Python's own http.server, which
//! ignores Accept) and through the PEP 691 JSON pages (our negotiating
//! test server, as docs/web-server.md configures Apache and nginx), and
//! resolves dependencies from the PEP 658 `.metadata` files.

mod web_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use piwheels::db::{BuildLog, BuiltFile, Database};
use piwheels::master::tasks::WebRequest;
use piwheels::testing::TestDb;
use web_support::*;

/// Builds real wheels, logs them as built, puts them (and their core
/// metadata, as the file juggler does) under `out/simple/<pkg>/`, and
/// writes the pages.
fn publish(db: &mut Database, out: &Path) {
    let wheels = scratch("wheels");
    for (package, version, requires) in [
        ("hello-piw", "1.0", vec!["dep-piw>=2"]),
        ("hello-piw", "1.1rc1", vec!["dep-piw>=2"]),
        ("dep-piw", "1.0", vec![]),
        ("dep-piw", "2.0", vec![]),
    ] {
        let (file, metadata) = make_wheel(&wheels, package, version, &requires);
        let path = wheels.join(&file);
        let dir = out.join("simple").join(package);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&path, dir.join(&file)).unwrap();
        std::fs::write(dir.join(format!("{file}.metadata")), &metadata).unwrap();
        if !db.test_package(package).unwrap() {
            db.add_new_package(package, "", "a test package").unwrap();
        }
        db.add_new_package_version(package, version, Some(at(1)), "")
            .unwrap();
        db.log_build(&BuildLog {
            package: package.into(),
            version: version.into(),
            built_by: 1,
            duration: Duration::from_secs(1),
            abi_tag: "cp311".into(),
            status: true,
            files: vec![BuiltFile {
                filename: file.clone(),
                filesize: std::fs::metadata(&path).unwrap().len() as i64,
                filehash: sha256_file(&path),
                package_tag: package.replace('-', "_"),
                package_version_tag: version.into(),
                py_version_tag: "py3".into(),
                abi_tag: "none".into(),
                platform_tag: "any".into(),
                requires_python: Some(">=3.7".into()),
                location: "/simple".into(),
                dependencies: requires
                    .iter()
                    .map(|r| ("pip".to_owned(), r.split('>').next().unwrap().to_owned()))
                    .collect(),
            }],
        })
        .unwrap();
    }
    let mut web = web(out);
    let t0 = Instant::now();
    web.start(db, t0, wall()).unwrap();
    for p in ["hello-piw", "dep-piw"] {
        web.request_at(WebRequest::Both(p.into()), db, t0, wall());
    }
    let later = t0 + Duration::from_secs(61);
    while web.next_deadline().is_some_and(|d| d <= later) {
        web.on_timer(later, wall(), db);
    }
}

fn pip(args: &[&str]) -> std::process::Output {
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "--isolated",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .args(["--no-cache-dir", "--timeout", "20", "--retries", "0"])
        .args(args)
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env_remove("PIP_INDEX_URL")
        .env_remove("PIP_EXTRA_INDEX_URL")
        .output()
        .expect("pip runs");
    assert!(
        out.status.success(),
        "pip {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Python's http.server on a free port; its request log is its stderr.
struct PyServer {
    child: Child,
    port: u16,
}

impl PyServer {
    fn start(root: &Path) -> PyServer {
        let mut child = Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(root)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected banner {line:?}"));
        PyServer { child, port }
    }

    fn log(mut self) -> String {
        let _ = self.child.kill();
        let out = self.child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

#[test]
fn pip_installs_from_the_html_pages_and_resolves_from_metadata() {
    test_dsn();
    let tdb = TestDb::new();
    let mut db = tdb.database();
    let out = scratch("pip-html");
    publish(&mut db, &out);
    let server = PyServer::start(&out);
    let index = format!("http://127.0.0.1:{}/simple", server.port);
    let target = scratch("pip-target");
    pip(&[
        "install",
        "--target",
        target.to_str().unwrap(),
        "--index-url",
        &index,
        "hello-piw",
    ]);
    // The stable release (not the release candidate) and its dependency.
    let init = std::fs::read_to_string(target.join("hello_piw/__init__.py")).unwrap();
    assert_eq!(init, "VALUE = '1.0'\n");
    assert_eq!(
        std::fs::read_to_string(target.join("dep_piw/__init__.py")).unwrap(),
        "VALUE = '2.0'\n"
    );
    let log = server.log();
    assert!(log.contains("GET /simple/hello-piw/ "), "{log}");
    assert!(
        log.contains("hello_piw-1.0-py3-none-any.whl.metadata"),
        "{log}"
    );
}

#[test]
fn pip_uses_the_json_pages_and_metadata_without_downloading_wheels() {
    test_dsn();
    let tdb = TestDb::new();
    let mut db = tdb.database();
    let out = scratch("pip-json");
    publish(&mut db, &out);
    let server = Server::start(&out);
    let index = server.url("/simple");

    // Resolution only: pip reads the JSON pages and the .metadata files.
    pip(&[
        "install",
        "--dry-run",
        "--ignore-installed",
        "--index-url",
        &index,
        "hello-piw",
    ]);
    let log = server.requests();
    assert!(
        log.contains(&"GET /simple/hello-piw/".to_owned()),
        "{log:?}"
    );
    assert!(log.contains(&"GET /simple/dep-piw/".to_owned()), "{log:?}");
    assert!(
        log.contains(&"GET /simple/hello-piw/hello_piw-1.0-py3-none-any.whl.metadata".to_owned()),
        "{log:?}"
    );
    assert!(
        log.contains(&"GET /simple/dep-piw/dep_piw-2.0-py3-none-any.whl.metadata".to_owned()),
        "{log:?}"
    );
    // Resolution used only the metadata: every .metadata request comes
    // before any wheel is fetched (pip 23.2's --dry-run still downloads
    // the chosen wheels afterwards; newer pips stop there).
    let last_metadata = log.iter().rposition(|l| l.ends_with(".metadata")).unwrap();
    let first_wheel = log
        .iter()
        .position(|l| l.ends_with(".whl"))
        .unwrap_or(usize::MAX);
    assert!(last_metadata < first_wheel, "{log:?}");

    // pip download fetches the metadata first, then the wheels.
    let dest = scratch("pip-download");
    pip(&[
        "download",
        "-d",
        dest.to_str().unwrap(),
        "--index-url",
        &index,
        "hello-piw==1.1rc1",
    ]);
    assert!(dest.join("hello_piw-1.1rc1-py3-none-any.whl").exists());
    assert!(dest.join("dep_piw-2.0-py3-none-any.whl").exists());
    let log = server.requests();
    assert!(
        log.contains(
            &"GET /simple/hello-piw/hello_piw-1.1rc1-py3-none-any.whl.metadata".to_owned()
        ),
        "{log:?}"
    );
}
