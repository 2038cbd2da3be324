//! The build policy of a self-hosted farm, on the real master following
//! the fake PyPI: an allow-list decides what is queued, SIGHUP re-reads it
//! without touching built wheels, and the newest-releases rule follows new
//! releases as they arrive.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{MasterProcess, TempDir};
use piwheels::fake_pypi::FakePypi;
use piwheels::master::policy::{NOT_ALLOWED, NOT_NEWEST};
use piwheels::testing::TestDb;

const LONG: Duration = Duration::from_secs(60);

fn db_with_abi() -> TestDb {
    let tdb = TestDb::new();
    tdb.admin()
        .batch_execute("INSERT INTO build_abis (abi_tag) VALUES ('cp311')")
        .unwrap();
    tdb
}

fn start(tdb: TestDb, fake: &FakePypi, list: &Path, extra: &[&str]) -> MasterProcess {
    let xmlrpc = fake.xmlrpc_url();
    let json = fake.json_url();
    let list = list.display().to_string();
    let mut args = vec![
        "--pypi-xmlrpc",
        xmlrpc.as_str(),
        "--pypi-json",
        json.as_str(),
        "--allow-list",
        list.as_str(),
    ];
    args.extend_from_slice(extra);
    MasterProcess::start_on(tdb, &args)
}

/// Waits until the master has stored PyPI serial `serial`.
fn wait_serial(master: &MasterProcess, serial: i64) {
    let deadline = Instant::now() + LONG;
    loop {
        let stored: i64 = master
            .db
            .admin()
            .query_one("SELECT pypi_serial FROM configuration", &[])
            .unwrap()
            .get(0);
        if stored >= serial {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "serial {stored} < {serial}; stderr:\n{}",
            master.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `query` (one text column) until it gives `want`.
fn wait_rows(master: &MasterProcess, query: &str, want: &BTreeSet<String>) {
    let deadline = Instant::now() + LONG;
    loop {
        let got: BTreeSet<String> = master
            .db
            .admin()
            .query(query, &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        if &got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{query}:\n got {got:?}\nwant {want:?}\nstderr:\n{}",
            master.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

const PENDING: &str = "SELECT DISTINCT package::text FROM builds_pending";
const UNSKIPPED: &str = "SELECT package::text FROM packages WHERE skip = ''";

#[test]
fn an_allow_list_queues_exactly_what_it_names_and_sighup_rereads_it() {
    let fake = FakePypi::start();
    for i in 0..1000 {
        fake.add_release(&format!("pkg-{i:04}"), "1.0");
    }
    let h = fake.flush_window();
    let dir = TempDir::new("policy");
    let list = dir.path().join("allow.txt");
    std::fs::write(
        &list,
        "# what this farm builds\npkg-0001\nPKG_0002\npkg-001?   # ten of them\npkg-099[89]\npkg-0500\n",
    )
    .unwrap();
    let master = start(db_with_abi(), &fake, &list, &[]);
    wait_serial(&master, h);

    let mut allowed: Vec<String> = vec!["pkg-0001", "pkg-0002", "pkg-0500", "pkg-0998", "pkg-0999"]
        .into_iter()
        .map(String::from)
        .collect();
    allowed.extend((10..20).map(|i| format!("pkg-{i:04}")));
    let allowed: BTreeSet<String> = allowed.into_iter().collect();
    wait_rows(&master, UNSKIPPED, &allowed);
    wait_rows(&master, PENDING, &allowed);
    let reasons: i64 = master
        .db
        .admin()
        .query_one(
            "SELECT count(*) FROM packages WHERE skip = $1",
            &[&NOT_ALLOWED],
        )
        .unwrap()
        .get(0);
    assert_eq!(reasons, 1000 - allowed.len() as i64);

    // pkg-0001 was built; then it leaves the list and pkg-0777 joins it.
    let mut db = master.db.database();
    db.log_build(&piwheels::db::BuildLog {
        package: "pkg-0001".into(),
        version: "1.0".into(),
        built_by: 1,
        duration: Duration::from_secs(1),
        abi_tag: "cp311".into(),
        status: true,
        files: vec![piwheels::db::BuiltFile {
            filename: "pkg_0001-1.0-py3-none-any.whl".into(),
            filesize: 4,
            filehash: "0".repeat(64),
            package_tag: "pkg_0001".into(),
            package_version_tag: "1.0".into(),
            py_version_tag: "py3".into(),
            abi_tag: "none".into(),
            platform_tag: "any".into(),
            requires_python: None,
            location: "/simple".into(),
            dependencies: vec![],
        }],
    })
    .unwrap();
    let wheel = master
        .dir
        .path()
        .join("www/simple/pkg-0001/pkg_0001-1.0-py3-none-any.whl");
    std::fs::create_dir_all(wheel.parent().unwrap()).unwrap();
    std::fs::write(&wheel, b"test").unwrap();
    std::fs::write(
        &list,
        "PKG_0002\npkg-001?\npkg-099[89]\npkg-0500\npkg-0777\n",
    )
    .unwrap();
    master.signal(libc::SIGHUP);
    let mut now_allowed = allowed.clone();
    now_allowed.remove("pkg-0001");
    now_allowed.insert("pkg-0777".into());
    wait_rows(&master, UNSKIPPED, &now_allowed);
    let mut pending = now_allowed.clone();
    pending.remove("pkg-0001");
    wait_rows(&master, PENDING, &pending);
    // The build and its wheel stay.
    let builds: i64 = master
        .db
        .admin()
        .query_one(
            "SELECT count(*) FROM builds WHERE package = 'pkg-0001'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(builds, 1);
    assert!(wheel.exists());
    assert!(master.stderr().contains("SIGHUP"));

    // A list that cannot be read keeps the current policy.
    std::fs::remove_file(&list).unwrap();
    master.signal(libc::SIGHUP);
    let deadline = Instant::now() + LONG;
    while !master
        .stderr()
        .contains("SIGHUP: cannot read the allow-list")
    {
        assert!(Instant::now() < deadline, "{}", master.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_rows(&master, UNSKIPPED, &now_allowed);
}

#[test]
fn only_the_newest_releases_are_built() {
    let fake = FakePypi::start();
    for v in ["1.0", "2.0", "3.0", "4.0", "5.0"] {
        fake.add_release("multi", v);
        fake.advance(60);
    }
    fake.add_release("other", "1.0");
    let h = fake.flush_window();
    let dir = TempDir::new("newest");
    let list = dir.path().join("allow.txt");
    std::fs::write(&list, "multi\n").unwrap();
    let master = start(db_with_abi(), &fake, &list, &["--newest-releases", "2"]);
    wait_serial(&master, h);
    let pending_versions = "SELECT version::text FROM builds_pending WHERE package = 'multi'";
    wait_rows(&master, pending_versions, &names(&["4.0", "5.0"]));
    let skipped: i64 = master
        .db
        .admin()
        .query_one(
            "SELECT count(*) FROM versions WHERE package = 'multi' AND skip = $1",
            &[&NOT_NEWEST],
        )
        .unwrap()
        .get(0);
    assert_eq!(skipped, 3);

    // A new release arrives: the oldest of the two drops out.
    fake.advance(60);
    fake.add_release("multi", "6.0");
    let h = fake.flush_window();
    wait_serial(&master, h);
    wait_rows(&master, pending_versions, &names(&["5.0", "6.0"]));
}
