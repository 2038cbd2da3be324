//! Golden tests of every page type, written by the real web task from a
//! database seeded through the data layer (names that need escaping,
//! yanked and pre-release versions, versions that are not PEP 440), plus
//! the properties the goldens alone would not make obvious.
//!
//! `PIW_UPDATE_GOLDEN=1 cargo test --test web_pages` rewrites the files in
//! tests/web_golden/ (review the diff before committing it).

mod web_support;

use std::io::Read;
use std::path::Path;

use piwheels::master::tasks::WebRequest;
use piwheels::testing::TestDb;
use web_support::*;

/// Output files compared with tests/web_golden/ (`/` becomes `__`).
const GOLDEN: &[&str] = &[
    "index.html",
    "faq.html",
    "packages.html",
    "json.html",
    "404.html",
    "sitemap.xml",
    "sitemap0.xml",
    "sitemap1.xml",
    "simple/index.html",
    "simple/foo/index.html",
    "simple/foo/index.json",
    "simple/a<b>&\"c'/index.html",
    "simple/a<b>&\"c'/index.json",
    "simple/empty/index.html",
    "project/foo/index.html",
    "project/foo/json/index.json",
    "project/a<b>&\"c'/index.html",
    "project/a<b>&\"c'/json/index.json",
    "project/empty/index.html",
];

fn golden_name(path: &str) -> String {
    path.replace('/', "__")
        .replace(['<', '>', '&', '"', '\''], "_")
}

fn check_golden(out: &Path) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web_golden");
    let update = std::env::var_os("PIW_UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for path in GOLDEN {
        let got = std::fs::read_to_string(out.join(path))
            .unwrap_or_else(|e| panic!("{path} was not written: {e}"));
        let golden = dir.join(golden_name(path));
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&golden, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if got != want {
            failures.push(format!(
                "{path} differs from {} (PIW_UPDATE_GOLDEN=1 to accept):\n{}",
                golden.display(),
                first_difference(&want, &got)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn first_difference(want: &str, got: &str) -> String {
    for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        if w != g {
            return format!("line {}:\n- {w}\n+ {g}", i + 1);
        }
    }
    format!(
        "lengths differ: {} lines expected, {} written",
        want.lines().count(),
        got.lines().count()
    )
}

#[test]
fn every_page_type_matches_its_golden() {
    test_dsn();
    let tdb = TestDb::new();
    let mut db = seed(&tdb);
    let out = scratch("golden");
    // The file juggler leaves each wheel's core metadata next to it.
    std::fs::create_dir_all(out.join("simple/foo")).unwrap();
    std::fs::write(
        out.join("simple/foo/foo-1.10-cp37-cp37m-linux_armv7l.whl.metadata"),
        "Metadata-Version: 2.1\nName: foo\nVersion: 1.10\n",
    )
    .unwrap();
    let mut web = web(&out);
    write_site(&mut web, &mut db, &out);
    web.request_at(
        WebRequest::Log {
            build_id: 1,
            output: "Collecting foo\n<b>not markup</b>\n".into(),
        },
        &mut db,
        std::time::Instant::now(),
        wall(),
    );
    check_golden(&out);

    // The log is gzip, and replacing it is not an error (0.23 crashed).
    web.request_at(
        WebRequest::Log {
            build_id: 1,
            output: "second attempt \u{2713}".into(),
        },
        &mut db,
        std::time::Instant::now(),
        wall(),
    );
    let gz = std::fs::File::open(out.join("logs/0000/0000/0001.txt.gz")).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "second attempt \u{2713}");
}

#[test]
fn pages_escape_and_order_like_piwheels() {
    test_dsn();
    let tdb = TestDb::new();
    let mut db = seed(&tdb);
    let out = scratch("props");
    let mut web = web(&out);
    write_site(&mut web, &mut db, &out);
    let read = |p: &str| std::fs::read_to_string(out.join(p)).unwrap();

    // Releases newest first by PEP 440, the legacy version last.
    let simple = read("simple/foo/index.html");
    let positions: Vec<usize> = ["2.0b1", "1.10", "1.5", "1.0-"]
        .iter()
        .map(|v| simple.find(&format!("foo-{v}")).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{simple}");
    // Absolute links with hashes; yanked and Requires-Python escaped.
    assert!(simple.contains("href=\"/simple/foo/foo-1.0-cp37-cp37m-linux_armv7l.whl#sha256="));
    assert!(simple.contains("data-requires-python=\"&gt;=3.7\""));
    assert!(simple.contains("data-requires-python=\"&lt;4,&gt;=3.7\""));
    let yanked = simple.lines().find(|l| l.contains("foo-1.5-")).unwrap();
    assert!(yanked.contains("data-yanked=\"\""));
    assert!(
        !simple
            .lines()
            .any(|l| l.contains("foo-1.10-") && l.contains("data-yanked"))
    );

    let json: serde_json::Value =
        serde_json::from_str(&read("project/foo/json/index.json")).unwrap();
    let versions: Vec<&String> = json["releases"].as_object().unwrap().keys().collect();
    assert_eq!(
        versions,
        ["2.0b1", "1.10", "1.5", "1.0.post1", "1.0", "0.9-SNAPSHOT"]
    );
    assert_eq!(json["releases"]["2.0b1"]["prerelease"], true);
    assert_eq!(json["releases"]["1.5"]["yanked"], true);
    assert_eq!(
        json["releases"]["0.9-SNAPSHOT"]["skip_reason"],
        "binary only"
    );
    let f = &json["releases"]["1.0"]["files"]["foo-1.0-cp37-cp37m-linux_armv7l.whl"];
    assert_eq!(
        f["apt_dependencies"],
        serde_json::json!(["libbar2", "libfoo1"])
    );
    assert_eq!(f["pip_dependencies"], serde_json::json!(["numpy"]));

    // Nothing from the database becomes markup.
    for page in [
        "project/a<b>&\"c'/index.html",
        "simple/a<b>&\"c'/index.html",
        "simple/index.html",
    ] {
        let html = read(page);
        assert!(!html.contains("<script>alert"), "{page}");
        assert!(!html.contains("a<b>"), "{page}");
        assert!(!html.contains("\">=3\"<x>"), "{page}");
    }
    let project = read("project/a<b>&\"c'/index.html");
    assert!(
        project.contains("<p>&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; more</p>")
    );
    // packages.json: every package with its counts (compact, any order).
    let search: Vec<(String, i64, i64)> = serde_json::from_str(&read("packages.json")).unwrap();
    let mut names: Vec<&str> = search.iter().map(|r| r.0.as_str()).collect();
    names.sort();
    assert_eq!(names, ["../evil", NASTY, "empty", "foo"]);
    // The install snippet uses the newest stable, unyanked release's file.
    let foo = read("project/foo/index.html");
    assert!(
        foo.contains("sudo apt install libfoo1\npip3 install foo"),
        "{foo}"
    );

    // Aliases link to the package; the unsafe name wrote nothing outside.
    let link = std::fs::read_link(out.join("project/Foo")).unwrap();
    assert_eq!(link, Path::new("foo"));
    assert!(out.join("project/FOO_/index.html").exists());
    assert!(!out.join("evil").exists() && !out.join("project/evil").exists());
    assert!(!out.parent().unwrap().join("evil").exists());
    // The simple index lists every package, sorted, with trailing slashes.
    let index = read("simple/index.html");
    let a = index.find("href=\"a%3Cb%3E%26%22c%27/\"").unwrap();
    let e = index.find("href=\"empty/\"").unwrap();
    let f = index.find("href=\"foo/\"").unwrap();
    assert!(a < e && e < f);
}

#[test]
fn deletions_remove_files_pages_and_links() {
    test_dsn();
    let tdb = TestDb::new();
    let mut db = seed(&tdb);
    let out = scratch("delete");
    let mut web = web(&out);
    write_site(&mut web, &mut db, &out);
    let now = std::time::Instant::now();
    let simple = out.join("simple/foo");
    for f in [
        "foo-1.10-cp37-cp37m-linux_armv7l.whl",
        "foo-1.10-cp39-cp39-linux_armv7l.whl",
        "foo-1.0-cp37-cp37m-linux_armv7l.whl",
    ] {
        std::fs::write(simple.join(f), "wheel").unwrap();
        std::fs::write(simple.join(format!("{f}.metadata")), "meta").unwrap();
    }

    // A buffered request for the package is dropped by the deletion.
    web.request_at(WebRequest::Project("foo".into()), &mut db, now, wall());
    web.request_at(
        WebRequest::DelVer("foo".into(), "1.10".into()),
        &mut db,
        now,
        wall(),
    );
    assert_eq!(web.pending(), 0);
    assert!(!simple.join("foo-1.10-cp37-cp37m-linux_armv7l.whl").exists());
    assert!(
        !simple
            .join("foo-1.10-cp39-cp39-linux_armv7l.whl.metadata")
            .exists()
    );
    assert!(simple.join("foo-1.0-cp37-cp37m-linux_armv7l.whl").exists());
    let page = std::fs::read_to_string(simple.join("index.html")).unwrap();
    assert!(!page.contains("1.10") && page.contains("foo-1.0-"));
    let project = std::fs::read_to_string(out.join("project/foo/index.html")).unwrap();
    assert!(!project.contains(">1.10<"));

    // A symlink standing where the package directory must be is replaced.
    std::fs::remove_dir_all(out.join("project/empty")).unwrap();
    std::os::unix::fs::symlink("foo", out.join("project/empty")).unwrap();
    web.request_at(WebRequest::Both("empty".into()), &mut db, now, wall());
    let later = now + std::time::Duration::from_secs(61);
    web.on_timer(later, wall(), &mut db);
    assert!(
        std::fs::symlink_metadata(out.join("project/empty"))
            .unwrap()
            .is_dir()
    );

    web.request_at(WebRequest::DelPkg("foo".into()), &mut db, now, wall());
    for gone in ["simple/foo", "project/foo", "project/Foo", "project/FOO_"] {
        assert!(
            std::fs::symlink_metadata(out.join(gone)).is_err(),
            "{gone} remains"
        );
    }
    let index = std::fs::read_to_string(out.join("simple/index.html")).unwrap();
    assert!(!index.contains("\"foo/\"") && index.contains("\"empty/\""));
}
