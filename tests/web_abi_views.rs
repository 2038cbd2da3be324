//! Per-ABI index views (`simple-<abi>/`): each lists only the files that
//! install on its ABI, links to the same wheels, leaves `simple/` as it was,
//! and pip pointed at a view picks only from it (piwheels issue #301).

mod web_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use piwheels::db::{BuildLog, BuiltFile};
use piwheels::master::tasks::WebRequest;
use piwheels::testing::TestDb;
use web_support::*;

fn built_file(name: &str, path: &std::path::Path, abi: &str) -> BuiltFile {
    let parts: Vec<&str> = name.trim_end_matches(".whl").split('-').collect();
    BuiltFile {
        filename: name.into(),
        filesize: std::fs::metadata(path).unwrap().len() as i64,
        filehash: sha256_file(path),
        package_tag: parts[0].into(),
        package_version_tag: parts[1].into(),
        py_version_tag: parts[2].into(),
        abi_tag: abi.into(),
        platform_tag: parts[4].into(),
        requires_python: None,
        location: "/simple".into(),
        dependencies: vec![],
    }
}

#[test]
fn each_abi_view_lists_only_what_installs_there() {
    test_dsn();
    let tdb = TestDb::new();
    tdb.admin()
        .batch_execute("INSERT INTO build_abis (abi_tag) VALUES ('cp39'), ('cp311')")
        .unwrap();
    let mut db = tdb.database();
    db.add_new_package("multi", "", "one package, three wheels")
        .unwrap();
    db.add_new_package_version("multi", "1.0", Some(at(1)), "")
        .unwrap();
    let out = scratch("abi-views");
    let wheels = scratch("abi-wheels");
    let (pure, _) = make_wheel(&wheels, "multi", "1.0", &[]);
    let dir = out.join("simple/multi");
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for (name, abi) in [
        (pure.clone(), "none"),
        ("multi-1.0-cp39-cp39-linux_x86_64.whl".to_string(), "cp39"),
        (
            "multi-1.0-cp311-cp311-linux_x86_64.whl".to_string(),
            "cp311",
        ),
    ] {
        // The same bytes under each name: pip only checks names and hashes.
        std::fs::copy(wheels.join(&pure), dir.join(&name)).unwrap();
        files.push(built_file(&name, &dir.join(&name), abi));
    }
    let cp311 = files.pop().unwrap();
    for (abi, files) in [("cp39", files), ("cp311", vec![cp311])] {
        db.log_build(&BuildLog {
            package: "multi".into(),
            version: "1.0".into(),
            built_by: 1,
            duration: Duration::from_secs(1),
            abi_tag: abi.into(),
            status: true,
            files,
        })
        .unwrap();
    }
    let mut web = web(&out);
    let t0 = Instant::now();
    web.start(&mut db, t0, wall()).unwrap();
    web.request_at(WebRequest::Both("multi".into()), &mut db, t0, wall());
    let later = t0 + Duration::from_secs(61);
    while web.next_deadline().is_some_and(|d| d <= later) {
        web.on_timer(later, wall(), &mut db);
    }

    let page = |p: &str| std::fs::read_to_string(out.join(p)).unwrap();
    let full = page("simple/multi/index.html");
    let v311 = page("simple-cp311/multi/index.html");
    let v39 = page("simple-cp39/multi/index.html");
    for name in [pure.as_str(), "cp39-cp39", "cp311-cp311"] {
        assert!(full.contains(name), "simple/ lists {name}");
    }
    assert!(v311.contains(&pure) && v311.contains("cp311-cp311") && !v311.contains("cp39-cp39"));
    assert!(v39.contains(&pure) && v39.contains("cp39-cp39") && !v39.contains("cp311-cp311"));
    // The views link to the same wheels, and share the root index.
    assert!(v311.contains("href=\"/simple/multi/multi-1.0-cp311-cp311-linux_x86_64.whl#sha256="));
    assert_eq!(page("simple-cp311/index.html"), page("simple/index.html"));
    assert!(page("simple-cp311/multi/index.json").contains("cp311-cp311"));
    assert!(!page("simple-cp311/multi/index.json").contains("cp39-cp39"));
    // The project page says what to put in pip.conf.
    assert!(
        page("project/multi/index.html")
            .contains("extra-index-url=https://wheels.example.org/simple-cp311/")
    );

    // pip for Python 3.9 takes the cp39 wheel from simple/, but only the
    // pure one from the cp311 view.
    let mut server = Command::new("python3")
        .args([
            "-u",
            "-m",
            "http.server",
            "0",
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let port = {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        line.split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap()
    };
    let download = |index: &str| -> Vec<String> {
        let dest = scratch("abi-download");
        let out = Command::new("python3")
            .args(["-m", "pip", "--isolated", "--disable-pip-version-check"])
            .args(["download", "--no-deps", "--only-binary=:all:"])
            .args([
                "--python-version",
                "3.9",
                "--implementation",
                "cp",
                "--abi",
                "cp39",
            ])
            .args(["--platform", "linux_x86_64", "--platform", "any"])
            .arg("--index-url")
            .arg(format!("http://127.0.0.1:{port}/{index}/"))
            .arg("-d")
            .arg(&dest)
            .arg("multi==1.0")
            .env("PIP_CONFIG_FILE", "/dev/null")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(
        download("simple"),
        vec!["multi-1.0-cp39-cp39-linux_x86_64.whl"]
    );
    assert_eq!(download("simple-cp311"), vec![pure]);
    let _ = server.kill();
    let _ = server.wait();
}
