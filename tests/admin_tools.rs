//! The operator tools (piw-import, piw-add, piw-remove, piw-rebuild) as
//! processes, against a real master process on a real database: what they
//! change in the tables and on disk, and how they fail.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{MasterProcess, TempDir};
use piwheels::testing::TestDb;

/// A master in dev mode (pages 3 s after a request), PyPI out of reach.
fn master(tdb: TestDb) -> MasterProcess {
    MasterProcess::start_offline(tdb, None)
}

/// A database that knows the cp311 ABI.
fn abi_db() -> TestDb {
    let tdb = TestDb::new();
    tdb.admin()
        .batch_execute("INSERT INTO build_abis (abi_tag) VALUES ('cp311')")
        .unwrap();
    tdb
}

fn exe(tool: &str) -> &'static str {
    match tool {
        "piw-import" => env!("CARGO_BIN_EXE_piw-import"),
        "piw-add" => env!("CARGO_BIN_EXE_piw-add"),
        "piw-remove" => env!("CARGO_BIN_EXE_piw-remove"),
        "piw-rebuild" => env!("CARGO_BIN_EXE_piw-rebuild"),
        other => panic!("no tool {other}"),
    }
}

/// Runs a tool with `stdin` as its input, killed after 60 s.
fn run_with(tool: &str, args: &[&str], home: &Path, stdin: &str) -> Output {
    let mut child = Command::new(exe(tool))
        .args(args)
        // No one's config files: HOME is a scratch directory.
        .env("HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{tool} {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a tool against `m`'s queues.
fn tool(m: &MasterProcess, tool: &str, args: &[&str]) -> Output {
    let queue = m.ipc("import");
    let file_queue = format!("tcp://127.0.0.1:{}", m.file_port);
    let mut all: Vec<&str> = vec!["--import-queue", &queue, "--reply-timeout", "20"];
    if tool == "piw-import" {
        all.extend(["--file-queue", &file_queue]);
    }
    all.extend(args);
    run_with(tool, &all, m.dir.path(), "")
}

fn ok(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", stderr(out));
}

/// Asserts exit status 1 and a message containing `want`.
fn fails(out: &Output, want: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{err}");
    assert!(err.contains(want), "wanted {want:?} in:\n{err}");
}

fn count(m: &MasterProcess, sql: &str) -> i64 {
    m.db.admin().query_one(sql, &[]).unwrap().get(0)
}

fn text(m: &MasterProcess, sql: &str) -> String {
    m.db.admin().query_one(sql, &[]).unwrap().get(0)
}

/// Polls `cond` until it holds, at most 30 s.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes a small real wheel (a zip with METADATA) named
/// `<dist>-<version>-<tags>.whl`, whose METADATA says `name` `version`.
fn make_wheel(dir: &Path, dist: &str, name: &str, version: &str, tags: &str) -> PathBuf {
    let path = dir.join(format!("{dist}-{version}-{tags}.whl"));
    let file = std::fs::File::create(&path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file(format!("{dist}/__init__.py"), opts).unwrap();
    zip.write_all(b"VALUE = 42\n").unwrap();
    let info = format!("{dist}-{version}.dist-info");
    zip.start_file(format!("{info}/METADATA"), opts).unwrap();
    write!(
        zip,
        "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nRequires-Python: >=3.7\n\
         Requires-Dist: six\n\nA test wheel.\n"
    )
    .unwrap();
    zip.start_file(format!("{info}/WHEEL"), opts).unwrap();
    zip.write_all(b"Wheel-Version: 1.0\nRoot-Is-Purelib: false\n")
        .unwrap();
    zip.finish().unwrap();
    path
}

fn www(m: &MasterProcess) -> PathBuf {
    m.dir.path().join("www")
}

#[test]
fn add_then_import_a_wheel() {
    let m = master(abi_db());
    let work = TempDir::new("admin-import");
    ok(&tool(&m, "piw-add", &["-y", "Foo_Bar", "-d", "A thing"]));
    assert_eq!(
        text(
            &m,
            "SELECT description FROM packages WHERE package = 'foo-bar'"
        ),
        "A thing"
    );
    ok(&tool(
        &m,
        "piw-add",
        &["-y", "foo-bar", "1.0", "-r", "2021-02-03 04:05:06"],
    ));
    assert_eq!(
        text(
            &m,
            "SELECT to_char(released, 'YYYY-MM-DD HH24:MI:SS') FROM versions \
             WHERE package = 'foo-bar' AND version = '1.0'"
        ),
        "2021-02-03 04:05:06"
    );

    let wheel = make_wheel(
        work.path(),
        "foo_bar",
        "Foo_Bar",
        "1.0",
        "cp311-cp311-linux_armv7l",
    );
    let bytes = std::fs::read(&wheel).unwrap();
    let deps = work.path().join("deps.txt");
    std::fs::write(&deps, "libfoo1\nlibbar2 ").unwrap();
    let output = work.path().join("build.log");
    std::fs::write(&output, "line one\nline two\n").unwrap();
    let started = Instant::now();
    ok(&tool(
        &m,
        "piw-import",
        &[
            "-y",
            "--delete",
            "--duration",
            "1m30s",
            "--output",
            output.to_str().unwrap(),
            "--dependencies",
            deps.to_str().unwrap(),
            wheel.to_str().unwrap(),
        ],
    ));
    eprintln!("piw-import took {:?}", started.elapsed());
    // --delete removed the source only after the import succeeded.
    assert!(!wheel.exists());
    let name = "foo_bar-1.0-cp311-cp311-linux_armv7l.whl";
    let landed = www(&m).join("simple/foo-bar").join(name);
    assert_eq!(std::fs::read(&landed).unwrap(), bytes);
    let row =
        m.db.admin()
            .query_one(
                "SELECT f.filesize, f.filehash, f.abi_tag, f.requires_python, b.abi_tag, \
             extract(epoch FROM b.duration)::int, b.built_by \
             FROM files f JOIN builds b USING (build_id) WHERE f.filename = $1",
                &[&name],
            )
            .unwrap();
    assert_eq!(row.get::<_, i32>(0) as usize, bytes.len());
    assert_eq!(
        row.get::<_, String>(1),
        piwheels::wheel::hash_file(&landed).unwrap().1
    );
    assert_eq!(row.get::<_, String>(2), "cp311");
    assert_eq!(row.get::<_, Option<String>>(3).as_deref(), Some(">=3.7"));
    assert_eq!(row.get::<_, String>(4), "cp311");
    assert_eq!(row.get::<_, i32>(5), 90);
    assert_eq!(row.get::<_, i32>(6), 0);
    assert_eq!(
        count(
            &m,
            &format!(
                "SELECT count(*) FROM dependencies WHERE tool = 'apt' \
                 AND dependency IN ('libfoo1', 'libbar2') AND filename = '{name}'"
            )
        ),
        2
    );
    assert_eq!(
        count(
            &m,
            &format!(
                "SELECT count(*) FROM dependencies WHERE tool = 'pip' \
                 AND dependency = 'six' AND filename = '{name}'"
            )
        ),
        1
    );
    // The simple index lists it once the secretary has flushed.
    let index = www(&m).join("simple/foo-bar/index.html");
    wait_for("the simple index to list the wheel", || {
        std::fs::read_to_string(&index).is_ok_and(|t| t.contains(name))
    });
}

#[test]
fn bad_imports_change_nothing() {
    let tdb = abi_db();
    let mut db = tdb.database();
    db.add_new_package("foo-bar", "", "").unwrap();
    db.add_new_package_version("foo-bar", "1.0", None, "")
        .unwrap();
    drop(db);
    let m = master(tdb);
    let work = TempDir::new("admin-bad");
    let dir = work.path();
    let path = |p: &PathBuf| p.to_str().unwrap().to_string();
    let import = |args: &[String]| {
        let mut all = vec!["-y".to_string()];
        all.extend(args.iter().cloned());
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        tool(&m, "piw-import", &refs)
    };

    let notes = dir.join("notes.txt");
    std::fs::write(&notes, "hello").unwrap();
    fails(&import(&[path(&notes)]), "not a wheel file name");

    let corrupt = dir.join("foo_bar-1.0-cp311-cp311-linux_armv7l.whl");
    std::fs::write(&corrupt, b"PK\x03\x04 this is no zip").unwrap();
    fails(&import(&[path(&corrupt)]), "not a valid wheel");

    let missing = dir.join("foo_bar-1.0-py3-none-any.whl");
    fails(&import(&[path(&missing)]), "cannot read");

    let sub = dir.join("v");
    std::fs::create_dir_all(&sub).unwrap();
    let one = make_wheel(dir, "foo_bar", "foo-bar", "1.0", "py3-none-linux_armv7l");
    let two = make_wheel(&sub, "foo_bar", "foo-bar", "2.0", "py3-none-linux_armv7l");
    fails(
        &import(&["--abi".into(), "cp311".into(), path(&one), path(&two)]),
        "one build of one version",
    );
    let other = make_wheel(&sub, "other", "other", "1.0", "cp311-cp311-linux_armv7l");
    fails(
        &import(&[path(&one), path(&other), "--abi=cp311".into()]),
        "one build of one package",
    );

    // METADATA that disagrees with the file name.
    let liar_dir = dir.join("liar");
    std::fs::create_dir_all(&liar_dir).unwrap();
    let liar = make_wheel(&liar_dir, "foo_bar", "not-foo", "1.0", "py3-none-any");
    fails(&import(&["--abi=cp311".into(), path(&liar)]), "METADATA");

    // A pure wheel says nothing about the builder's ABI.
    fails(&import(&[path(&one)]), "--abi");

    // None of that reached the master.
    assert!(!m.stderr().contains("importing"), "{}", m.stderr());

    // The master's refusal: a version it does not know.
    let unknown = make_wheel(
        &sub,
        "foo_bar",
        "foo-bar",
        "9.9",
        "cp311-cp311-linux_armv7l",
    );
    fails(
        &import(&[path(&unknown)]),
        "unknown package version foo-bar 9.9",
    );
    // And an ABI it does not build.
    fails(&import(&["--abi=cp27mu".into(), path(&one)]), "invalid ABI");

    assert_eq!(count(&m, "SELECT count(*) FROM builds"), 0);
    assert_eq!(count(&m, "SELECT count(*) FROM files"), 0);
    let simple = www(&m).join("simple/foo-bar");
    let wheels = std::fs::read_dir(&simple)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "whl"))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(wheels, 0);
    assert!(one.exists() && corrupt.exists() && unknown.exists());
}

#[test]
fn a_file_that_fails_verification_is_not_imported() {
    use piwheels::admin::import::{do_import, prepare};
    use piwheels::config::import::{Command, ImportConfig};
    let tdb = abi_db();
    let mut db = tdb.database();
    db.add_new_package("foo-bar", "", "").unwrap();
    db.add_new_package_version("foo-bar", "1.0", None, "")
        .unwrap();
    drop(db);
    let m = master(tdb);
    let work = TempDir::new("admin-verify");
    let wheel = make_wheel(
        work.path(),
        "foo_bar",
        "foo-bar",
        "1.0",
        "cp311-cp311-linux_armv7l",
    );
    let args = [
        "--import-queue".to_string(),
        m.ipc("import"),
        "--file-queue".to_string(),
        format!("tcp://127.0.0.1:{}", m.file_port),
        wheel.display().to_string(),
    ];
    let Command::Run(config) = ImportConfig::parse(args.map(Into::into).to_vec(), &[]).unwrap()
    else {
        panic!("not a run");
    };
    let mut prepared = prepare(&config).unwrap();
    assert_eq!(prepared.state.package, "foo-bar");
    assert_eq!(prepared.state.abi_tag, "cp311");
    // What the master expects is not what arrives: the file changed after
    // it was read, say.
    prepared.state.files[0].filehash = "0".repeat(64);
    let err = do_import(&config, &prepared).unwrap_err();
    assert!(err.contains("failed verification"), "{err}");
    assert_eq!(count(&m, "SELECT count(*) FROM builds"), 0);
    assert_eq!(count(&m, "SELECT count(*) FROM files"), 0);
    assert!(
        !www(&m)
            .join("simple/foo-bar")
            .join(wheel.file_name().unwrap())
            .exists()
    );
    assert_eq!(common::transfer_temps(&www(&m).join("simple")), 0);
    // The same file, honestly described, goes in afterwards.
    let prepared = prepare(&config).unwrap();
    do_import(&config, &prepared).unwrap();
    assert_eq!(count(&m, "SELECT count(*) FROM files"), 2);
}

#[test]
fn an_import_waits_its_turn_past_its_timeout() {
    use piwheels::admin::ImportClient;
    use piwheels::admin::import::{prepare, send_file};
    use piwheels::config::import::{Command, ImportConfig};
    use piwheels::protocol::{ImportReply, ImportRequest};
    let tdb = abi_db();
    let mut db = tdb.database();
    db.add_new_package("foo-bar", "", "").unwrap();
    for v in ["1.0", "2.0"] {
        db.add_new_package_version("foo-bar", v, None, "").unwrap();
    }
    drop(db);
    let m = master(tdb);
    let work = TempDir::new("admin-turn");
    let sub = work.path().join("b");
    std::fs::create_dir_all(&sub).unwrap();
    let a = make_wheel(
        work.path(),
        "foo_bar",
        "foo-bar",
        "1.0",
        "cp311-cp311-linux_armv7l",
    );
    let b = make_wheel(
        &sub,
        "foo_bar",
        "foo-bar",
        "2.0",
        "cp311-cp311-linux_armv7l",
    );
    let queue = m.ipc("import");
    let file_queue = format!("tcp://127.0.0.1:{}", m.file_port);
    // A starts and holds the master's one import slot.
    let args = [a.display().to_string()].map(Into::into).to_vec();
    let Command::Run(config) = ImportConfig::parse(args, &[]).unwrap() else {
        panic!("not a run");
    };
    let prepared = prepare(&config).unwrap();
    let client = ImportClient::connect(&queue, Duration::from_secs(20)).unwrap();
    let reply = client
        .request(&ImportRequest::Import(prepared.state.clone()))
        .unwrap();
    assert!(matches!(reply, ImportReply::Send(_)), "{reply:?}");
    // B, with a 1 s reply timeout, must wait for its turn instead.
    let home = m.dir.path().to_path_buf();
    let (q, fq, bpath) = (queue.clone(), file_queue.clone(), b.display().to_string());
    let other = std::thread::spawn(move || {
        let args = [
            "-y",
            "--import-queue",
            &q,
            "--file-queue",
            &fq,
            "--reply-timeout",
            "1",
            &bpath,
        ];
        run_with("piw-import", &args, &home, "")
    });
    wait_for("B to queue", || m.stderr().contains("waits its turn"));
    // Time passing beyond B's timeout is the point here, not a sync.
    std::thread::sleep(Duration::from_millis(1500));
    send_file(&client, &file_queue, &a).unwrap();
    assert_eq!(
        client.request(&ImportRequest::Sent).unwrap(),
        ImportReply::Done("IMPORT".into())
    );
    let out = other.join().unwrap();
    ok(&out);
    assert!(
        stderr(&out).contains("has not answered yet"),
        "{}",
        stderr(&out)
    );
    assert_eq!(count(&m, "SELECT count(*) FROM builds"), 2);
}

#[test]
fn add_skip_yank_and_remove() {
    let m = master(abi_db());
    let work = TempDir::new("admin-remove");
    ok(&tool(
        &m,
        "piw-add",
        &["-y", "foo-bar", "-d", "x", "-a", "Foo.Bar"],
    ));
    assert_eq!(
        count(
            &m,
            "SELECT count(*) FROM package_names WHERE package = 'foo-bar' AND name = 'Foo.Bar'"
        ),
        1
    );
    // Unknown package: a version cannot be added.
    fails(
        &tool(&m, "piw-add", &["-y", "nope", "1.0"]),
        "does not exist",
    );
    // Just Enter at the prompt is yes, as in piwheels.
    let queue = m.ipc("import");
    ok(&run_with(
        "piw-add",
        &["--import-queue", &queue, "foo-bar", "0.9"],
        m.dir.path(),
        "\n",
    ));
    assert_eq!(
        count(&m, "SELECT count(*) FROM versions WHERE version = '0.9'"),
        1
    );
    // A new version, yanked; then unyanked; yanking a known one is refused.
    ok(&tool(&m, "piw-add", &["-y", "foo-bar", "1.0", "--yank"]));
    let yanked = |v: &str| -> bool {
        m.db.admin()
            .query_one(
                "SELECT yanked FROM versions WHERE package = 'foo-bar' AND version = $1",
                &[&v],
            )
            .unwrap()
            .get(0)
    };
    assert!(yanked("1.0"));
    ok(&tool(&m, "piw-add", &["-y", "foo-bar", "1.0", "--unyank"]));
    assert!(!yanked("1.0"));
    fails(
        &tool(&m, "piw-add", &["-y", "foo-bar", "1.0", "--yank"]),
        "use piw-remove",
    );
    ok(&tool(&m, "piw-remove", &["-y", "foo-bar", "1.0", "--yank"]));
    assert!(yanked("1.0"));

    // Skips: a new version with a reason, cleared, then set by piw-remove.
    let skip = |v: &str| -> String {
        text(
            &m,
            &format!("SELECT skip FROM versions WHERE package = 'foo-bar' AND version = '{v}'"),
        )
    };
    ok(&tool(
        &m,
        "piw-add",
        &["-y", "foo-bar", "2.0", "-s", "broken"],
    ));
    assert_eq!(skip("2.0"), "broken");
    ok(&tool(&m, "piw-add", &["-y", "foo-bar", "2.0", "--unskip"]));
    assert_eq!(skip("2.0"), "");
    ok(&tool(
        &m,
        "piw-remove",
        &["-y", "foo-bar", "2.0", "-s", "licence"],
    ));
    assert_eq!(skip("2.0"), "licence");
    ok(&tool(&m, "piw-remove", &["-y", "foo-bar", "-s", "gone"]));
    assert_eq!(
        text(&m, "SELECT skip FROM packages WHERE package = 'foo-bar'"),
        "gone"
    );

    fails(
        &tool(&m, "piw-remove", &["-y", "nope"]),
        "Package nope does not exist",
    );
    fails(
        &tool(&m, "piw-remove", &["-y", "foo-bar", "9.9"]),
        "Version foo-bar 9.9 does not exist",
    );

    // A version with a wheel: its builds go (file too), then the version.
    let wheel = make_wheel(
        work.path(),
        "foo_bar",
        "foo-bar",
        "1.0",
        "cp311-cp311-linux_armv7l",
    );
    ok(&tool(&m, "piw-import", &["-y", wheel.to_str().unwrap()]));
    let landed = www(&m)
        .join("simple/foo-bar")
        .join(wheel.file_name().unwrap());
    assert!(landed.exists());
    ok(&tool(
        &m,
        "piw-remove",
        &["-y", "--builds", "foo-bar", "1.0"],
    ));
    assert!(!landed.exists());
    assert_eq!(count(&m, "SELECT count(*) FROM builds"), 0);
    assert_eq!(
        count(&m, "SELECT count(*) FROM versions WHERE version = '1.0'"),
        1
    );
    ok(&tool(&m, "piw-import", &["-y", wheel.to_str().unwrap()]));
    assert!(landed.exists());
    ok(&tool(&m, "piw-remove", &["-y", "foo-bar", "1.0"]));
    assert!(!landed.exists());
    assert_eq!(
        count(&m, "SELECT count(*) FROM versions WHERE version = '1.0'"),
        0
    );
    assert_eq!(count(&m, "SELECT count(*) FROM files"), 0);

    // The whole package, pages and all.
    let project = www(&m).join("project/foo-bar/index.html");
    wait_for("the project page", || project.exists());
    ok(&tool(&m, "piw-remove", &["-y", "foo-bar"]));
    assert_eq!(count(&m, "SELECT count(*) FROM packages"), 0);
    wait_for("the project page to go", || !project.exists());
    assert!(!www(&m).join("simple/foo-bar/index.html").exists());
}

#[test]
fn add_takes_the_description_from_pypi() {
    let fake = piwheels::fake_pypi::FakePypi::start();
    fake.create_project("Foo.Bar");
    fake.set_summary("Foo.Bar", Some("From PyPI"));
    let m = master(abi_db());
    let json = fake.json_url();
    ok(&tool(
        &m,
        "piw-add",
        &["-y", "--pypi-json", &json, "Foo.Bar"],
    ));
    assert_eq!(
        text(
            &m,
            "SELECT description FROM packages WHERE package = 'foo-bar'"
        ),
        "From PyPI"
    );
    // PyPI out of reach: added anyway, without a description.
    let out = tool(
        &m,
        "piw-add",
        &["-y", "--pypi-json", "http://127.0.0.1:9/pypi", "other"],
    );
    ok(&out);
    assert!(
        stderr(&out).contains("cannot get the description"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        text(
            &m,
            "SELECT description FROM packages WHERE package = 'other'"
        ),
        ""
    );
}

#[test]
fn rebuild_rewrites_pages() {
    let m = master(abi_db());
    ok(&tool(&m, "piw-add", &["-y", "foo-bar", "-d", "x"]));
    let www = www(&m);
    let project = www.join("project/foo-bar/index.html");
    let simple = www.join("simple/foo-bar/index.html");
    let home = www.join("index.html");
    let search = www.join("packages.json");
    for p in [&project, &simple, &home, &search] {
        wait_for(&format!("{}", p.display()), || p.exists());
    }
    // Each part: delete the page, ask for it, see it come back.
    let cases: [(&[&str], &[&PathBuf]); 5] = [
        (&["project", "foo-bar"], &[&project]),
        (&["index", "Foo_Bar"], &[&project, &simple]),
        (&["both"], &[&project, &simple]),
        (&["home"], &[&home]),
        (&["search"], &[&search]),
    ];
    for (args, pages) in cases {
        for p in pages {
            std::fs::remove_file(p).unwrap();
        }
        let mut all = vec!["-y"];
        all.extend(args);
        ok(&tool(&m, "piw-rebuild", &all));
        for p in pages {
            wait_for(&format!("{args:?} to rewrite {}", p.display()), || {
                p.exists()
            });
        }
    }
    fails(
        &tool(&m, "piw-rebuild", &["-y", "project", "nope"]),
        "Package nope does not exist",
    );
}

#[test]
fn a_dead_master_is_an_error_within_the_timeout() {
    let dir = TempDir::new("admin-dead");
    let queue = format!("ipc://{}", dir.path().join("import").display());
    let wheel = make_wheel(dir.path(), "foo", "foo", "1.0", "cp311-cp311-linux_armv7l");
    let cases: [(&str, Vec<&str>); 4] = [
        ("piw-add", vec!["foo", "-d", "x"]),
        ("piw-remove", vec!["foo", "1.0"]),
        ("piw-rebuild", vec!["home"]),
        ("piw-import", vec![wheel.to_str().unwrap()]),
    ];
    for (name, args) in cases {
        let mut all = vec!["-y", "--import-queue", &queue, "--reply-timeout", "1"];
        all.extend(args);
        let started = Instant::now();
        let out = run_with(name, &all, dir.path(), "");
        let took = started.elapsed();
        fails(&out, "no reply from the master");
        assert!(took < Duration::from_secs(10), "{name} took {took:?}");
        eprintln!("{name} gave up after {took:?}");
    }
    assert!(wheel.exists());

    // Someone listens but never answers: still an error, saying so.
    let ctx = zmq::Context::new();
    let mute = ctx.socket(zmq::ROUTER).unwrap();
    mute.bind(&queue).unwrap();
    let started = Instant::now();
    let args = [
        "-y",
        "--import-queue",
        &queue,
        "--reply-timeout",
        "1",
        "home",
    ];
    let out = run_with("piw-rebuild", &args, dir.path(), "");
    fails(&out, "although it is connected");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        mute.recv_multipart(zmq::DONTWAIT).is_ok(),
        "the request arrived"
    );
}

#[test]
fn prompts_help_and_usage() {
    let dir = TempDir::new("admin-cli");
    let queue = format!("ipc://{}", dir.path().join("import").display());
    for (name, own) in [
        ("piw-import", "--package-version"),
        ("piw-add", "--unyank"),
        ("piw-remove", "--builds"),
        ("piw-rebuild", "part"),
    ] {
        let out = run_with(name, &["--help"], dir.path(), "");
        assert_eq!(out.status.code(), Some(0));
        let help = String::from_utf8_lossy(&out.stdout);
        for opt in [
            "--import-queue",
            "-y, --yes",
            "-c FILE",
            "--log-file",
            "--debug TASK",
            "--reply-timeout",
            own,
        ] {
            assert!(help.contains(opt), "{name} --help lacks {opt}:\n{help}");
        }
        let out = run_with(name, &["--version"], dir.path(), "");
        assert_eq!(out.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&out.stdout).contains(piwheels::VERSION));
        let out = run_with(name, &["--bogus"], dir.path(), "");
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("--bogus"));
    }
    // Saying no (or nothing) at the prompt sends nothing: exit 2 at once,
    // although no master listens.
    for answer in ["n\n", ""] {
        for (name, args) in [
            ("piw-add", vec!["foo", "-d", "x"]),
            ("piw-remove", vec!["foo"]),
            ("piw-rebuild", vec!["project"]),
        ] {
            let mut all = vec!["--import-queue", &queue, "--reply-timeout", "30"];
            all.extend(args);
            let started = Instant::now();
            let out = run_with(name, &all, dir.path(), answer);
            assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
            assert!(stderr(&out).contains("User aborted"), "{}", stderr(&out));
            assert!(started.elapsed() < Duration::from_secs(10));
        }
    }
    let out = run_with("piw-rebuild", &["pages"], dir.path(), "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid website part"));
}
