//! The fake PyPI as slaves and pip see it: a PEP 503 index with real sdists
//! that pip builds offline, the JSON API, and yanked releases.

use std::process::Command;

use piwheels::fake_pypi::{FakePypi, SdistKind};

fn get(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut r = agent.get(url).call().unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().unwrap_or_default())
}

#[test]
fn simple_index_and_json() {
    let fake = FakePypi::start();
    fake.add_release("Foo_Bar", "1.0");
    fake.add_release("Foo_Bar", "1.1");
    fake.yank("Foo_Bar", "1.0");
    fake.add_binary_release("wheelonly", "2.0");
    fake.set_summary("Foo_Bar", Some("Foo & bar"));

    let (status, index) = get(&fake.simple_url());
    assert_eq!(status, 200);
    assert!(
        index.contains(r#"<a href="/simple/foo-bar/">foo-bar</a>"#),
        "{index}"
    );
    assert!(index.contains(r#"<a href="/simple/wheelonly/">wheelonly</a>"#));

    let (status, page) = get(&format!("{}foo-bar/", fake.simple_url()));
    assert_eq!(status, 200);
    assert!(
        page.contains(r#"<a href="/packages/foo_bar-1.0.tar.gz" data-yanked="">"#),
        "{page}"
    );
    assert!(page.contains(r#"<a href="/packages/foo_bar-1.1.tar.gz">"#));
    // non-canonical names redirect, as on PyPI
    let (status, _) = get(&format!("{}Foo_Bar/", fake.simple_url()));
    assert_eq!(status, 301);
    let (status, page) = get(&format!("{}wheelonly/", fake.simple_url()));
    assert_eq!(status, 200);
    assert!(
        !page.contains("<a "),
        "a wheel-only release has no sdist to build"
    );

    let (status, json) = get(&format!("{}/foo-bar/json", fake.json_url()));
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["info"]["summary"], "Foo & bar");
    assert_eq!(doc["info"]["name"], "Foo_Bar");
    assert_eq!(doc["releases"]["1.0"][0]["yanked"], true);
    let (status, json) = get(&format!("{}/wheelonly/json", fake.json_url()));
    assert_eq!(status, 200);
    assert!(json.contains(r#""summary":null"#));
    assert_eq!(get(&format!("{}/nope/json", fake.json_url())).0, 404);
    assert_eq!(
        get(&format!("{}/packages/nope-1.0.tar.gz", fake.url())).0,
        404
    );
}

/// A Python whose pip can build a setuptools project without downloading
/// anything: setuptools and wheel installed (Debian: python3-setuptools,
/// python3-wheel).
fn python_with_setuptools_and_wheel() -> String {
    for py in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(py)
            .args(["-c", "import setuptools, wheel, pip"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return py.to_owned();
        }
    }
    panic!(
        "no python3 with pip, setuptools and wheel: install python3-pip, \
         python3-setuptools and python3-wheel"
    );
}

#[test]
fn pip_builds_the_sdists_offline() {
    let fake = FakePypi::start();
    fake.add_release("Foo_Bar", "1.0");
    fake.add_release("zope.fake-thing", "2.0rc1");
    fake.set_summary("zope.fake-thing", Some("A dotted name"));
    let python = python_with_setuptools_and_wheel();
    let dir = std::env::temp_dir().join(format!("piw-pip-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for spec in ["Foo_Bar==1.0", "zope.fake-thing==2.0rc1"] {
        let out = Command::new(&python)
            .args(["-m", "pip", "wheel", "--no-deps", "--no-build-isolation"])
            .args(["--no-cache-dir", "--disable-pip-version-check"])
            .args(["--index-url", &fake.simple_url()])
            .arg("--wheel-dir")
            .arg(&dir)
            .arg(spec)
            .env("PIP_NO_INPUT", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pip wheel {spec} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut wheels: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    wheels.sort();
    assert_eq!(wheels.len(), 2, "{wheels:?}");
    assert!(
        wheels.iter().all(|w| w.ends_with("-py3-none-any.whl")),
        "{wheels:?}"
    );
    assert!(wheels[0].starts_with("Foo_Bar-1.0-"), "{wheels:?}");
    assert!(wheels[1].contains("2.0rc1"), "{wheels:?}");
    assert_eq!(fake.file_calls(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn in_tree_sdists_build_with_piwheels_own_pip_flags() {
    // piw-slave runs pip with build isolation and nothing but the index;
    // the in-tree flavour needs no build requirements at all.
    let fake = FakePypi::builder()
        .sdists(SdistKind::InTree)
        .start()
        .unwrap();
    fake.add_release("Tiny_Pkg", "0.3");
    let dir = std::env::temp_dir().join(format!("piw-pip-iso-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new("python3")
        .args(["-m", "pip", "wheel"])
        .arg(format!("--wheel-dir={}", dir.display()))
        .args([
            "--no-deps",
            "--no-cache-dir",
            "--no-binary=Tiny_Pkg",
            "--prefer-binary",
        ])
        .args(["--exists-action=w", "--disable-pip-version-check"])
        .arg(format!("--index-url={}", fake.simple_url()))
        .arg("Tiny_Pkg==0.3")
        .env("PIP_NO_INPUT", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pip wheel failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let wheels: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(wheels, vec!["tiny_pkg-0.3-py3-none-any.whl".to_owned()]);
    let _ = std::fs::remove_dir_all(&dir);
}
