//! The offline test sdist, checked against the real pip: served by the
//! local index, built by `pip wheel` with build isolation and no network,
//! read back by `piwheels::wheel`, and installed by `pip install`.

mod common;

use std::process::Command;

use common::TempDir;
use piwheels::testing_sdist::{SdistSpec, SimpleIndex};
use piwheels::wheel::{self, WheelName};

fn pip(args: &[&str]) -> std::process::Output {
    Command::new("python3")
        .args(["-m", "pip"])
        .args(args)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .output()
        .expect("python3 -m pip")
}

#[test]
fn pip_builds_and_installs_the_generated_sdist_offline() {
    let tmp = TempDir::new("sdist");
    let index = SimpleIndex::serve(&tmp.path().join("index")).unwrap();
    let mut spec = SdistSpec::new("Tiny.Pkg", "1.2");
    spec.requires_python = Some(">=3.7".into());
    spec.requires_dist = vec!["Some_Dep>=1.0".into(), "pytest; extra == \"test\"".into()];
    let sdist = index.add(&spec, "python3").unwrap();
    assert_eq!(sdist.file_name().unwrap(), "tiny_pkg-1.2.tar.gz");

    let out = tmp.path().join("out");
    let log = tmp.path().join("pip.log");
    let r = pip(&[
        "wheel",
        "--no-deps",
        "--no-cache-dir",
        "--no-binary=Tiny.Pkg",
        "--wheel-dir",
        out.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
        "--index-url",
        &index.url(),
        "Tiny.Pkg==1.2",
    ]);
    assert!(
        r.status.success(),
        "pip wheel failed:\n{}\n{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
    // pip asked our index (the canonical project page, then the file).
    let requests = index.requests();
    assert!(
        requests.contains(&"/simple/tiny-pkg/".to_string()),
        "{requests:?}"
    );
    assert!(requests.iter().any(|r| r.ends_with("/tiny_pkg-1.2.tar.gz")));

    let whl = out.join(spec.wheel_filename());
    assert!(whl.exists(), "no {}", whl.display());
    let name = WheelName::parse(&spec.wheel_filename()).unwrap();
    let meta = wheel::read_metadata(&whl, &name).unwrap();
    assert_eq!(meta.member, "tiny_pkg-1.2.dist-info/METADATA");
    assert_eq!(
        String::from_utf8(meta.raw.clone()).unwrap(),
        spec.metadata()
    );
    let parsed = meta.parse();
    assert_eq!(parsed.requires_python(), Some(">=3.7"));
    assert_eq!(parsed.pip_dependencies(), ["some-dep"]);

    let target = tmp.path().join("site");
    let r = pip(&[
        "install",
        "--no-index",
        "--no-deps",
        "--target",
        target.to_str().unwrap(),
        whl.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let init = std::fs::read_to_string(target.join("tiny_pkg/__init__.py")).unwrap();
    assert_eq!(init, "__version__ = \"1.2\"\n");
}

#[test]
fn a_failing_build_fails_in_pip() {
    let tmp = TempDir::new("sdist-fail");
    let index = SimpleIndex::serve(&tmp.path().join("index")).unwrap();
    let mut spec = SdistSpec::new("broken", "0.1");
    spec.fail = true;
    index.add(&spec, "python3").unwrap();
    let out = tmp.path().join("out");
    let r = pip(&[
        "wheel",
        "--no-deps",
        "--no-cache-dir",
        "--wheel-dir",
        out.to_str().unwrap(),
        "--index-url",
        &index.url(),
        "broken==0.1",
    ]);
    assert!(!r.status.success());
    let text =
        String::from_utf8_lossy(&r.stderr).into_owned() + &String::from_utf8_lossy(&r.stdout);
    assert!(text.contains("fails on purpose"), "{text}");
}
