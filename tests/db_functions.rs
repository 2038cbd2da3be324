//! Every stored function the master uses, through our data layer, as the
//! unprivileged role, each test on its own fresh database.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use piwheels::db::{
    AccessLog, BuildLog, BuildStatus, BuiltFile, Database, DbError, HitLog, RewriteCommand,
    RewritePending,
};
use piwheels::testing::TestDb;
use postgres::Client;

fn t(y: i32, mo: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).unwrap()
}

fn wheel(pkg: &str, ver: &str, abi: &str, platform: &str) -> BuiltFile {
    let py = if abi == "none" { "py3" } else { "cp3x" };
    BuiltFile {
        filename: format!("{pkg}-{ver}-{py}-{abi}-{platform}.whl"),
        filesize: 1000,
        filehash: "0".repeat(64),
        package_tag: pkg.into(),
        package_version_tag: ver.into(),
        py_version_tag: py.into(),
        abi_tag: abi.into(),
        platform_tag: platform.into(),
        requires_python: None,
        location: "/simple".into(),
        dependencies: vec![],
    }
}

fn build(
    db: &mut Database,
    pkg: &str,
    ver: &str,
    abi: &str,
    status: bool,
    files: Vec<BuiltFile>,
) -> i32 {
    db.log_build(&BuildLog {
        package: pkg.into(),
        version: ver.into(),
        built_by: 1,
        duration: Duration::from_secs(60),
        abi_tag: abi.into(),
        status,
        files,
    })
    .unwrap()
}

fn abis(admin: &mut Client, list: &[(&str, &str)]) {
    for (abi, skip) in list {
        admin
            .execute(
                "INSERT INTO build_abis (abi_tag, skip) VALUES ($1, $2)",
                &[abi, skip],
            )
            .unwrap();
    }
}

fn add(db: &mut Database, pkg: &str, versions: &[(&str, DateTime<Utc>)]) {
    db.add_new_package(pkg, "", "").unwrap();
    for (v, when) in versions {
        assert!(db.add_new_package_version(pkg, v, Some(*when), "").unwrap());
    }
}

fn count(admin: &mut Client, sql: &str) -> i64 {
    admin.query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn packages_versions_and_skips() {
    let tdb = TestDb::new();
    let mut db = tdb.database();
    let mut admin = tdb.admin();

    assert!(db.add_new_package("foo", "", "A foo").unwrap());
    assert!(
        !db.add_new_package("foo", "", "again").unwrap(),
        "duplicate"
    );
    assert!(db.add_new_package("bar", "binary only", "").unwrap());
    assert!(db.test_package("foo").unwrap());
    assert!(!db.test_package("nope").unwrap());
    assert_eq!(
        db.get_all_packages().unwrap(),
        ["foo", "bar"].iter().map(|s| s.to_string()).collect()
    );

    let before = Utc::now() - chrono::Duration::seconds(5);
    assert!(db.add_new_package_version("foo", "1.0", None, "").unwrap());
    assert!(!db.add_new_package_version("foo", "1.0", None, "").unwrap());
    assert!(
        db.add_new_package_version("foo", "0.9", Some(t(2019, 5, 1, 12)), "old")
            .unwrap()
    );
    let released: NaiveDateTime = admin
        .query_one(
            "SELECT released FROM versions WHERE package = 'foo' AND version = '1.0'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(released >= before.naive_utc() && released <= Utc::now().naive_utc());
    let released: NaiveDateTime = admin
        .query_one(
            "SELECT released FROM versions WHERE package = 'foo' AND version = '0.9'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        released,
        t(2019, 5, 1, 12).naive_utc(),
        "stored as naive UTC"
    );
    assert!(db.test_package_version("foo", "1.0").unwrap());
    assert!(!db.test_package_version("foo", "2.0").unwrap());
    let mut all = Vec::new();
    db.for_each_package_version(|p, v| all.push((p.to_owned(), v.to_owned())))
        .unwrap();
    all.sort();
    assert_eq!(
        all,
        vec![("foo".into(), "0.9".into()), ("foo".into(), "1.0".into())]
    );

    assert_eq!(
        db.get_version_skip("foo", "0.9").unwrap().as_deref(),
        Some("old")
    );
    assert_eq!(
        db.get_version_skip("foo", "1.0").unwrap().as_deref(),
        Some("")
    );
    assert_eq!(db.get_version_skip("foo", "7").unwrap(), None);
    db.skip_package_version("foo", "0.9", "").unwrap();
    assert_eq!(
        db.get_version_skip("foo", "0.9").unwrap().as_deref(),
        Some("")
    );
    db.skip_package("foo", "too big").unwrap();
    assert_eq!(
        count(
            &mut admin,
            "SELECT COUNT(*) FROM packages WHERE skip = 'too big'"
        ),
        1
    );

    db.set_package_description("foo", "A better foo").unwrap();
    assert_eq!(
        db.get_project_data("foo").unwrap().description.as_deref(),
        Some("A better foo")
    );

    assert!(!db.package_marked_deleted("foo").unwrap());
    db.skip_package("foo", "deleted").unwrap();
    assert!(db.package_marked_deleted("foo").unwrap());
    db.skip_package_version("foo", "1.0", "deleted").unwrap();
    assert_eq!(
        db.get_versions_deleted("foo")
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec!["1.0".to_string()]
    );

    db.yank_version("foo", "1.0").unwrap();
    assert!(db.get_project_data("foo").unwrap().releases["1.0"].yanked);
    db.unyank_version("foo", "1.0").unwrap();
    assert!(!db.get_project_data("foo").unwrap().releases["1.0"].yanked);
}

#[test]
fn deleting_cascades() {
    let tdb = TestDb::new();
    let mut db = tdb.database();
    let mut admin = tdb.admin();
    abis(&mut admin, &[("cp37m", "")]);
    add(
        &mut db,
        "foo",
        &[("1.0", t(2020, 1, 1, 0)), ("2.0", t(2020, 2, 1, 0))],
    );
    db.add_package_name("foo", "Foo", Some(t(2020, 1, 1, 0)))
        .unwrap();
    let mut w = wheel("foo", "1.0", "cp37m", "linux_armv7l");
    w.dependencies = vec![("apt".into(), "libc6".into())];
    build(&mut db, "foo", "1.0", "cp37m", true, vec![w]);
    build(
        &mut db,
        "foo",
        "2.0",
        "cp37m",
        true,
        vec![wheel("foo", "2.0", "none", "any")],
    );

    db.delete_version("foo", "1.0").unwrap();
    assert!(!db.test_package_version("foo", "1.0").unwrap());
    assert_eq!(count(&mut admin, "SELECT COUNT(*) FROM builds"), 1);
    assert_eq!(count(&mut admin, "SELECT COUNT(*) FROM files"), 1);
    assert_eq!(count(&mut admin, "SELECT COUNT(*) FROM dependencies"), 0);

    db.delete_package("foo").unwrap();
    assert!(!db.test_package("foo").unwrap());
    for table in ["versions", "builds", "files", "package_names"] {
        assert_eq!(
            count(&mut admin, &format!("SELECT COUNT(*) FROM {table}")),
            0,
            "{table}"
        );
    }
}

#[test]
fn package_names_and_aliases() {
    let tdb = TestDb::new();
    let mut db = tdb.database();
    add(&mut db, "foo-bar", &[]);
    db.add_package_name("foo-bar", "foo-bar", Some(t(2020, 1, 1, 0)))
        .unwrap();
    db.add_package_name("foo-bar", "Foo_Bar", Some(t(2021, 1, 1, 0)))
        .unwrap();
    db.add_package_name("foo-bar", "foo.bar", None).unwrap();
    let mut aliases = db.get_package_aliases("foo-bar").unwrap();
    aliases.sort();
    assert_eq!(aliases, vec!["Foo_Bar".to_string(), "foo.bar".to_string()]);
    assert_eq!(
        db.get_project_data("foo-bar").unwrap().name.as_deref(),
        Some("Foo_Bar")
    );
    // Seeing a name again moves its "seen" time (upsert on the name).
    db.add_package_name("foo-bar", "foo.bar", Some(t(2022, 1, 1, 0)))
        .unwrap();
    assert_eq!(
        db.get_project_data("foo-bar").unwrap().name.as_deref(),
        Some("foo.bar")
    );
}

#[test]
fn pypi_serial_only_moves_forward() {
    let tdb = TestDb::new();
    let mut db = tdb.database();
    assert_eq!(db.get_pypi_serial().unwrap(), 0);
    db.set_pypi_serial(100).unwrap();
    db.set_pypi_serial(100).unwrap();
    assert_eq!(db.get_pypi_serial().unwrap(), 100);
    let err = db.set_pypi_serial(50).unwrap_err();
    match &err {
        DbError::Query(e) => {
            assert_eq!(e.code().unwrap().code(), "23000");
            assert!(e.as_db_error().unwrap().message().contains("backwards"));
        }
        other => panic!("unexpected {other}"),
    }
    assert!(!err.is_unavailable());
    assert_eq!(db.get_pypi_serial().unwrap(), 100);
}

#[test]
fn build_abis_with_and_without_skipped() {
    let tdb = TestDb::new();
    let mut db = tdb.database();
    abis(
        &mut tdb.admin(),
        &[("cp34m", "old"), ("cp35m", ""), ("cp37m", "")],
    );
    assert_eq!(db.get_build_abis(false).unwrap().len(), 3);
    assert_eq!(
        db.get_build_abis(true)
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec!["cp35m".to_string(), "cp37m".to_string()]
    );
}

#[test]
fn logging_builds_files_and_dependencies() {
    let tdb = TestDb::new();
    let mut db = tdb.database();
    let mut admin = tdb.admin();
    abis(&mut admin, &[("cp37m", "")]);
    add(&mut db, "foo", &[("1.0", t(2020, 1, 1, 0))]);

    let mut w7 = wheel("foo", "1.0", "cp37m", "linux_armv7l");
    w7.requires_python = Some(">=3.7".into());
    w7.dependencies = vec![
        ("apt".into(), "libfoo1".into()),
        ("pip".into(), "bar".into()),
        ("".into(), "weird".into()),
    ];
    let w6 = wheel("foo", "1.0", "cp37m", "linux_armv6l");
    let id = build(
        &mut db,
        "foo",
        "1.0",
        "cp37m",
        true,
        vec![w7.clone(), w6.clone()],
    );
    assert!(id > 0);
    let row = admin
        .query_one(
            "SELECT b.status, b.built_by, b.abi_tag, EXTRACT(EPOCH FROM b.duration)::float8, \
                    f.filesize, f.filehash, f.requires_python, f.location, f.py_version_tag \
             FROM builds b JOIN files f USING (build_id) WHERE f.filename = $1",
            &[&w7.filename],
        )
        .unwrap();
    assert!(row.get::<_, bool>(0));
    assert_eq!(row.get::<_, i32>(1), 1);
    assert_eq!(row.get::<_, String>(2), "cp37m");
    assert_eq!(row.get::<_, f64>(3), 60.0);
    assert_eq!(row.get::<_, i32>(4), 1000);
    assert_eq!(row.get::<_, String>(5), "0".repeat(64));
    assert_eq!(row.get::<_, Option<String>>(6).as_deref(), Some(">=3.7"));
    assert_eq!(row.get::<_, String>(7), "/simple");
    assert_eq!(row.get::<_, String>(8), "cp3x");
    assert_eq!(count(&mut admin, "SELECT COUNT(*) FROM dependencies"), 3);

    let files = db.get_package_files("foo").unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[&w6.filename], "0".repeat(64));
    assert_eq!(db.get_version_files("foo", "1.0").unwrap().len(), 2);

    // A failure is logged without files.
    let failed = build(&mut db, "foo", "1.0", "cp37m", false, vec![]);
    assert!(failed > id);
    assert_eq!(
        count(&mut admin, "SELECT COUNT(*) FROM builds WHERE NOT status"),
        1
    );

    // A rebuild takes the filename over: the old row and its dependencies go.
    let mut again = w7.clone();
    again.dependencies = vec![("apt".into(), "libfoo2".into())];
    let rebuilt = build(&mut db, "foo", "1.0", "cp37m", true, vec![again]);
    let owner: i32 = admin
        .query_one(
            "SELECT build_id FROM files WHERE filename = $1",
            &[&w7.filename],
        )
        .unwrap()
        .get(0);
    assert_eq!(owner, rebuilt);
    let deps: Vec<String> = admin
        .query(
            "SELECT dependency FROM dependencies WHERE filename = $1",
            &[&w7.filename],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(deps, vec!["libfoo2".to_string()]);

    // Kept quirk: a success with no files is accepted (piwheels' guard never
    // fires).
    let empty = build(&mut db, "foo", "1.0", "cp37m", true, vec![]);
    assert!(empty > rebuilt);

    db.delete_build("foo", "1.0").unwrap();
    for table in ["builds", "files", "dependencies"] {
        assert_eq!(
            count(&mut admin, &format!("SELECT COUNT(*) FROM {table}")),
            0,
            "{table}"
        );
    }
    assert!(
        db.test_package_version("foo", "1.0").unwrap(),
        "the version stays"
    );
}

#[test]
fn awkward_text_goes_through_the_arrays_intact() {
    let tdb = TestDb::new();
    let mut db = tdb.database();
    abis(&mut tdb.admin(), &[("cp37m", "")]);
    add(&mut db, "foo", &[("1.0", t(2020, 1, 1, 0))]);
    let mut w = wheel("foo", "1.0", "cp37m", "linux_armv7l");
    w.filename = "foo-1.0-\"quoted\",{brace}\\back'slash (x).whl".into();
    w.requires_python = Some(">=3.7, !=3.8.*".into());
    w.dependencies = vec![("apt".into(), "lib \"odd\", {x}".into())];
    build(&mut db, "foo", "1.0", "cp37m", true, vec![w.clone()]);
    let data = db.get_project_data("foo").unwrap();
    let f = &data.releases["1.0"].files[&w.filename];
    assert_eq!(f.requires_python.as_deref(), Some(">=3.7, !=3.8.*"));
    assert!(f.apt_dependencies.contains("lib \"odd\", {x}"));
}

#[test]
fn access_logs() {
    let tdb = TestDb::new();
    let mut db = tdb.database();
    let mut admin = tdb.admin();
    let host: IpAddr = "192.0.2.7".parse().unwrap();
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    let at = t(2021, 6, 1, 10) + chrono::Duration::microseconds(123456);

    let mut d = AccessLog::new("foo-1.0-py3-none-any.whl", host, at);
    d.arch = Some("armv7l".into());
    d.distro_name = Some("Raspbian\u{1b}[31m".into());
    d.setuptools_version = Some("50.0".into());
    db.log_download(&d).unwrap();
    db.log_search(&AccessLog::new("foo", v6, at)).unwrap();
    let hit = |name: &str| HitLog {
        name: name.into(),
        host,
        timestamp: at,
        user_agent: Some("curl/7\u{0}".into()),
    };
    db.log_project(&hit("foo")).unwrap();
    db.log_json(&hit("foo")).unwrap();
    db.log_page(&hit("faq")).unwrap();

    let r = admin
        .query_one(
            "SELECT filename, host(accessed_by), accessed_at, arch, distro_name, \
                    setuptools_version, py_name FROM downloads",
            &[],
        )
        .unwrap();
    assert_eq!(r.get::<_, String>(0), "foo-1.0-py3-none-any.whl");
    assert_eq!(r.get::<_, String>(1), "192.0.2.7");
    assert_eq!(r.get::<_, NaiveDateTime>(2), at.naive_utc());
    assert_eq!(r.get::<_, Option<String>>(3).as_deref(), Some("armv7l"));
    assert_eq!(
        r.get::<_, Option<String>>(4).as_deref(),
        Some("Raspbian\u{fffd}[31m"),
        "control characters are replaced"
    );
    assert_eq!(r.get::<_, Option<String>>(5).as_deref(), Some("50.0"));
    assert_eq!(r.get::<_, Option<String>>(6), None);
    let r = admin
        .query_one("SELECT package, host(accessed_by) FROM searches", &[])
        .unwrap();
    assert_eq!(r.get::<_, String>(0), "foo");
    assert_eq!(r.get::<_, String>(1), "2001:db8::1");
    for (table, col) in [
        ("project_page_hits", "package"),
        ("project_json_downloads", "package"),
        ("web_page_hits", "page"),
    ] {
        let r = admin
            .query_one(
                &format!("SELECT {col}, user_agent, accessed_at FROM {table}"),
                &[],
            )
            .unwrap();
        assert_eq!(
            r.get::<_, Option<String>>(1).as_deref(),
            Some("curl/7\u{fffd}")
        );
        assert_eq!(r.get::<_, NaiveDateTime>(2), at.naive_utc(), "{table}");
    }
    assert_eq!(
        count(
            &mut admin,
            "SELECT COUNT(*) FROM project_page_hits WHERE NOT bot"
        ),
        1
    );
}

#[test]
fn statistics() {
    let tdb = TestDb::new();
    let mut db = tdb.database();
    let mut admin = tdb.admin();
    abis(
        &mut admin,
        &[("cp34m", "retired"), ("cp35m", ""), ("cp37m", "")],
    );
    let now = Utc::now();
    add(
        &mut db,
        "foo",
        &[
            ("1.0", now - chrono::Duration::minutes(10)),
            ("0.1", t(2019, 1, 1, 0)),
        ],
    );
    add(&mut db, "bar", &[("1.0", t(2019, 1, 1, 0))]);
    build(
        &mut db,
        "foo",
        "1.0",
        "cp35m",
        true,
        vec![
            wheel("foo", "1.0", "cp35m", "linux_armv7l"),
            wheel("foo", "1.0", "cp35m", "linux_armv6l"),
        ],
    );
    build(
        &mut db,
        "bar",
        "1.0",
        "cp37m",
        true,
        vec![wheel("bar", "1.0", "none", "any")],
    );
    build(&mut db, "foo", "0.1", "cp35m", false, vec![]);
    // A two-week build (clock trouble) does not count towards builds_time.
    db.log_build(&BuildLog {
        package: "foo".into(),
        version: "0.1".into(),
        built_by: 2,
        duration: Duration::from_secs(14 * 86400),
        abi_tag: "cp37m".into(),
        status: false,
        files: vec![],
    })
    .unwrap();
    let host: IpAddr = "192.0.2.1".parse().unwrap();
    for (file, when) in [
        (
            "foo-1.0-cp3x-cp35m-linux_armv7l.whl",
            now - chrono::Duration::minutes(5),
        ),
        (
            "foo-1.0-cp3x-cp35m-linux_armv7l.whl",
            now - chrono::Duration::days(3),
        ),
        ("bar-1.0-py3-none-any.whl", now - chrono::Duration::days(40)),
    ] {
        db.log_download(&AccessLog::new(file, host, when)).unwrap();
    }

    let s = db.get_statistics().unwrap();
    assert_eq!(s.builds_time, Duration::from_secs(180));
    assert_eq!(s.builds_size, 2000, "armv6l is left out");
    assert_eq!(s.packages_built, 2);
    assert_eq!(s.files_count, 3);
    assert_eq!(s.new_last_hour, 1);
    assert_eq!(s.downloads_last_month, 2);
    assert_eq!(s.downloads_last_hour, 1);
    assert_eq!(
        s.builds_last_hour,
        BTreeMap::from([("cp35m".to_string(), 2), ("cp37m".to_string(), 2)]),
        "active ABIs only"
    );
    assert_eq!(db.get_initial_statistics().unwrap(), 3);

    let mut index = BTreeMap::new();
    let n = db
        .get_search_index(|p, recent, all| {
            index.insert(p.to_owned(), (recent, all));
        })
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(index["foo"], (2, 2));
    assert_eq!(index["bar"], (0, 1));
}

#[test]
fn statistics_of_an_empty_database() {
    let tdb = TestDb::new();
    let s = tdb.database().get_statistics().unwrap();
    assert_eq!(s.builds_time, Duration::ZERO);
    assert_eq!((s.builds_size, s.files_count, s.packages_built), (0, 0, 0));
    assert!(s.builds_last_hour.is_empty());
}

#[test]
fn rewrites_pending_round_trip() {
    let tdb = TestDb::new();
    let mut db = tdb.database();
    assert!(db.load_rewrites_pending().unwrap().is_empty());
    let rows = vec![
        RewritePending {
            package: "late".into(),
            added_at: t(2021, 1, 1, 12),
            command: RewriteCommand::Both,
        },
        RewritePending {
            package: "early".into(),
            added_at: t(2021, 1, 1, 11) + chrono::Duration::microseconds(5),
            command: RewriteCommand::Project,
        },
    ];
    db.save_rewrites_pending(&rows).unwrap();
    let loaded = db.load_rewrites_pending().unwrap();
    assert_eq!(
        loaded,
        vec![rows[1].clone(), rows[0].clone()],
        "oldest first"
    );
    // Loading does not empty the table; saving replaces it.
    assert_eq!(db.load_rewrites_pending().unwrap().len(), 2);
    db.save_rewrites_pending(&rows[..1]).unwrap();
    assert_eq!(db.load_rewrites_pending().unwrap(), vec![rows[0].clone()]);
    db.save_rewrites_pending(&[]).unwrap();
    assert!(db.load_rewrites_pending().unwrap().is_empty());
}

fn queue(db: &mut Database, limit: i32) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    db.get_build_queue(limit, |a, p, v| out.push((a.into(), p.into(), v.into())))
        .unwrap();
    out
}

fn q(a: &str, p: &str, v: &str) -> (String, String, String) {
    (a.into(), p.into(), v.into())
}

#[test]
fn build_queue_order_and_progression() {
    let tdb = TestDb::new();
    let mut db = tdb.database();
    let mut admin = tdb.admin();
    abis(
        &mut admin,
        &[("cp34m", ""), ("cp35m", ""), ("cp33m", "retired")],
    );
    add(&mut db, "new", &[("1.0", t(2021, 1, 1, 0))]);
    add(
        &mut db,
        "old",
        &[("1.0", t(2019, 1, 1, 0)), ("2.0", t(2020, 1, 1, 0))],
    );
    add(&mut db, "skipped", &[("1.0", t(2018, 1, 1, 0))]);
    db.skip_package("skipped", "no").unwrap();
    add(&mut db, "vskip", &[("1.0", t(2018, 1, 1, 0))]);
    db.skip_package_version("vskip", "1.0", "no").unwrap();

    // Lowest active ABI first, oldest release first.
    assert_eq!(
        queue(&mut db, 100),
        vec![
            q("cp34m", "old", "1.0"),
            q("cp34m", "old", "2.0"),
            q("cp34m", "new", "1.0")
        ]
    );
    assert_eq!(queue(&mut db, 2).len(), 2, "limit applies per ABI");

    // A failure on cp34m moves the version on to cp35m.
    build(&mut db, "old", "1.0", "cp34m", false, vec![]);
    // An ABI-specific wheel also moves it on.
    build(
        &mut db,
        "old",
        "2.0",
        "cp34m",
        true,
        vec![wheel("old", "2.0", "cp34m", "linux_armv7l")],
    );
    // A pure-Python wheel finishes it everywhere.
    build(
        &mut db,
        "new",
        "1.0",
        "cp34m",
        true,
        vec![wheel("new", "1.0", "none", "any")],
    );
    assert_eq!(
        queue(&mut db, 100),
        vec![q("cp35m", "old", "1.0"), q("cp35m", "old", "2.0")]
    );
    let map = db.get_build_queue_map(100).unwrap();
    assert_eq!(map.len(), 1);
    assert_eq!(map["cp35m"][0], ("old".to_string(), "1.0".to_string()));

    build(
        &mut db,
        "old",
        "1.0",
        "cp35m",
        true,
        vec![wheel("old", "1.0", "cp35m", "linux_armv7l")],
    );
    build(&mut db, "old", "2.0", "cp35m", false, vec![]);
    assert!(queue(&mut db, 100).is_empty());

    // Kept quirk: an abi3-only success covers nothing, so it stays queued.
    add(&mut db, "stable", &[("1.0", t(2021, 6, 1, 0))]);
    build(
        &mut db,
        "stable",
        "1.0",
        "cp34m",
        true,
        vec![wheel("stable", "1.0", "abi3", "linux_armv7l")],
    );
    assert_eq!(queue(&mut db, 100), vec![q("cp34m", "stable", "1.0")]);
}

#[test]
fn builds_pending_positions() {
    let tdb = TestDb::new();
    let mut db = tdb.database();
    let mut user = tdb.user();
    abis(&mut tdb.admin(), &[("cp34m", ""), ("cp35m", "")]);
    add(
        &mut db,
        "a",
        &[("1", t(2020, 3, 1, 0)), ("2", t(2020, 1, 1, 0))],
    );
    add(&mut db, "b", &[("1", t(2020, 2, 1, 0))]);
    build(&mut db, "b", "1", "cp34m", false, vec![]);
    let rows: Vec<(String, i64, String, String)> = user
        .query(
            "SELECT abi_tag, position, package, version FROM builds_pending \
             ORDER BY abi_tag, position",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("cp34m".into(), 1, "a".into(), "2".into()),
            ("cp34m".into(), 2, "a".into(), "1".into()),
            ("cp35m".into(), 1, "b".into(), "1".into()),
        ]
    );
}

/// The `abis` object of one release as abi -> (status, build_id).
fn abi_map(
    db: &mut Database,
    pkg: &str,
    ver: &str,
) -> BTreeMap<String, (BuildStatus, Option<i32>)> {
    db.get_project_data(pkg).unwrap().releases[ver]
        .abis
        .iter()
        .map(|(k, v)| (k.clone(), (v.status, v.build_id)))
        .collect()
}

fn m(list: &[(&str, BuildStatus, Option<i32>)]) -> BTreeMap<String, (BuildStatus, Option<i32>)> {
    list.iter()
        .map(|(a, s, b)| (a.to_string(), (*s, *b)))
        .collect()
}

#[test]
fn project_data_abi_scores() {
    // Build ABIs cp34m < cp35m; "X" below is cp35m, "lower" is cp34m. One
    // package per row of the scoring table.
    use BuildStatus::*;
    let tdb = TestDb::new();
    let mut db = tdb.database();
    abis(
        &mut tdb.admin(),
        &[("cp34m", ""), ("cp35m", ""), ("cp27mu", "retired")],
    );
    let when = t(2020, 1, 1, 0);
    for p in [
        "p5", "p4", "p2", "p1", "p0", "l4", "l3", "lf", "sk", "vs", "tie",
    ] {
        add(&mut db, p, &[("1", when)]);
    }

    // builder = X, success, file ABI = X: 5 -> success.
    let b = build(
        &mut db,
        "p5",
        "1",
        "cp35m",
        true,
        vec![wheel("p5", "1", "cp35m", "linux_armv7l")],
    );
    assert_eq!(
        abi_map(&mut db, "p5", "1"),
        m(&[("cp34m", Pending, None), ("cp35m", Success, Some(b))])
    );

    // builder = X, success, ABI-less file: 4, reported on X.
    let b = build(
        &mut db,
        "p4",
        "1",
        "cp35m",
        true,
        vec![wheel("p4", "1", "none", "any")],
    );
    assert_eq!(
        abi_map(&mut db, "p4", "1"),
        m(&[("cp34m", Pending, None), ("cp35m", Success, Some(b))])
    );

    // builder = X, failure: 2 -> fail.
    let b = build(&mut db, "p2", "1", "cp35m", false, vec![]);
    assert_eq!(
        abi_map(&mut db, "p2", "1"),
        m(&[("cp34m", Pending, None), ("cp35m", Fail, Some(b))])
    );

    // builder = X, success without files: 1 -> error.
    let b = build(&mut db, "p1", "1", "cp35m", true, vec![]);
    assert_eq!(
        abi_map(&mut db, "p1", "1"),
        m(&[("cp34m", Pending, None), ("cp35m", Error, Some(b))])
    );

    // No build at all: 1 -> pending everywhere (active ABIs only).
    assert_eq!(
        abi_map(&mut db, "p0", "1"),
        m(&[("cp34m", Pending, None), ("cp35m", Pending, None)])
    );

    // builder < X, success, file ABI = X: 4 for X; on the lower ABI that file
    // scores -2 and reports on X too, so only X appears.
    let b = build(
        &mut db,
        "l4",
        "1",
        "cp34m",
        true,
        vec![wheel("l4", "1", "cp35m", "linux_armv7l")],
    );
    assert_eq!(
        abi_map(&mut db, "l4", "1"),
        m(&[("cp35m", Success, Some(b))])
    );

    // builder < X, success, ABI-less file: 3 for X, 4 for the lower ABI.
    let b = build(
        &mut db,
        "l3",
        "1",
        "cp34m",
        true,
        vec![wheel("l3", "1", "abi3", "linux_armv7l")],
    );
    assert_eq!(
        abi_map(&mut db, "l3", "1"),
        m(&[("cp34m", Success, Some(b)), ("cp35m", Success, Some(b))])
    );

    // builder < X, failure: -1 for X (dropped; it reports on the builder's
    // ABI, where the same build scores 2), so X does not appear at all.
    let b = build(&mut db, "lf", "1", "cp34m", false, vec![]);
    assert_eq!(abi_map(&mut db, "lf", "1"), m(&[("cp34m", Fail, Some(b))]));

    // Skipped package or version: status skip whatever the build.
    let b = build(&mut db, "sk", "1", "cp34m", false, vec![]);
    db.skip_package("sk", "nope").unwrap();
    assert_eq!(abi_map(&mut db, "sk", "1"), m(&[("cp34m", Skip, Some(b))]));
    db.skip_package_version("vs", "1", "bad version").unwrap();
    assert_eq!(
        abi_map(&mut db, "vs", "1"),
        m(&[("cp34m", Skip, None), ("cp35m", Skip, None)])
    );

    // Equal scores: the latest build wins (our deterministic tie-break).
    build(&mut db, "tie", "1", "cp35m", false, vec![]);
    let later = build(&mut db, "tie", "1", "cp35m", false, vec![]);
    assert_eq!(abi_map(&mut db, "tie", "1")["cp35m"], (Fail, Some(later)));

    // A success beats a failure on the same ABI.
    let ok = build(
        &mut db,
        "tie",
        "1",
        "cp35m",
        true,
        vec![wheel("tie", "1", "cp35m", "linux_armv7l")],
    );
    assert_eq!(abi_map(&mut db, "tie", "1")["cp35m"], (Success, Some(ok)));
}

#[test]
fn project_data_document() {
    let tdb = TestDb::new();
    let mut db = tdb.database();
    let mut admin = tdb.admin();
    abis(&mut admin, &[("cp37m", "")]);
    admin
        .batch_execute(
            "INSERT INTO preinstalled_apt_packages VALUES ('cp37m', 'libc6'), ('cp37m', 'zlib1g')",
        )
        .unwrap();
    db.add_new_package("foo", "", "The foo").unwrap();
    db.add_package_name("foo", "Foo", Some(t(2020, 1, 1, 0)))
        .unwrap();
    db.add_new_package_version("foo", "1.0", Some(t(2020, 5, 6, 7)), "")
        .unwrap();
    db.add_new_package_version("foo", "2.0", Some(t(2021, 1, 1, 0)), "broken")
        .unwrap();
    let mut w = wheel("foo", "1.0", "cp37m", "linux_armv7l");
    w.requires_python = Some(">=3.6".into());
    w.dependencies = vec![
        ("apt".into(), "libc6".into()),
        ("apt".into(), "libfoo1".into()),
        ("pip".into(), "bar".into()),
    ];
    let bid = build(&mut db, "foo", "1.0", "cp37m", true, vec![w.clone()]);

    let data = db.get_project_data("foo").unwrap();
    assert_eq!(data.name.as_deref(), Some("Foo"));
    assert_eq!(data.description.as_deref(), Some("The foo"));
    assert_eq!(data.releases.len(), 2);
    let r1 = &data.releases["1.0"];
    assert_eq!(r1.released, t(2020, 5, 6, 7));
    assert_eq!(r1.skip, "");
    assert!(!r1.yanked);
    let f = &r1.files[&w.filename];
    assert_eq!(f.location, "/simple");
    assert_eq!(f.size, 1000);
    assert_eq!(
        (f.abi_builder.as_str(), f.abi_file.as_str()),
        ("cp37m", "cp37m")
    );
    assert_eq!(f.platform, "linux_armv7l");
    assert_eq!(f.requires_python.as_deref(), Some(">=3.6"));
    assert_eq!(
        f.apt_dependencies.iter().collect::<Vec<_>>(),
        ["libfoo1"],
        "preinstalled left out"
    );
    assert_eq!(f.pip_dependencies.iter().collect::<Vec<_>>(), ["bar"]);
    assert_eq!(r1.abis["cp37m"].build_id, Some(bid));
    let r2 = &data.releases["2.0"];
    assert_eq!(r2.skip, "broken");
    assert!(r2.files.is_empty());
    db.skip_package("foo", "package reason").unwrap();
    let data = db.get_project_data("foo").unwrap();
    assert_eq!(
        data.releases["1.0"].skip, "package reason",
        "falls back to the package's"
    );
    assert_eq!(data.releases["2.0"].skip, "broken", "the version's wins");

    // Empty collections are written as {} (as piwheels does).
    let json = db.get_project_data_json("foo").unwrap();
    assert!(json.contains("\"files\" : {}"), "{json}");
    let mut w2 = wheel("foo", "1.0", "none", "any");
    w2.dependencies = vec![];
    build(&mut db, "foo", "1.0", "cp37m", true, vec![w2]);
    let json = db.get_project_data_json("foo").unwrap();
    assert!(json.contains("\"apt_dependencies\" : {}"), "{json}");

    // Unknown package: no name, no description, no releases.
    let none = db.get_project_data("nope").unwrap();
    assert_eq!((none.name, none.description), (None, None));
    assert!(none.releases.is_empty());
}
