//! The README's first command works: `scripts/demo --check` sets up a
//! database, runs the fake PyPI, the master, a slave and a web server, waits
//! for a wheel, installs it with pip from the served site and stops
//! everything. Runs the debug binaries cargo built for this test.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TempDir, free_port};

#[test]
fn demo_check_builds_and_serves_a_wheel_pip_installs() {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_piw-master"))
        .parent()
        .unwrap();
    assert!(Path::new(env!("CARGO_BIN_EXE_piw-fake-pypi")).exists());
    let dir = TempDir::new("demo");
    let db = format!("piw_demo_test_{}", std::process::id());
    let _cleanup = DropDb(db.clone());
    let log = dir.path().join("demo.log");
    let mut child = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo"))
        .arg("--check")
        .env("PIW_BIN_DIR", bin_dir)
        .env("PIW_DEMO_DIR", dir.path().join("demo"))
        .env("PIW_DEMO_DB", &db)
        .env("PIW_DEMO_WEB_PORT", free_port().to_string())
        .env("PIW_DEMO_SLAVE_PORT", free_port().to_string())
        .env("PIW_DEMO_FILE_PORT", free_port().to_string())
        .env("PIW_DEMO_TIMEOUT", "200")
        .env_remove("PIW_MASTER")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.path().join("demo.err")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(280);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            // Stop the demo's children before failing, then kill the script.
            let _ = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo"))
                .arg("--stop")
                .env("PIW_DEMO_DIR", dir.path().join("demo"))
                .status();
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let out = std::fs::read_to_string(&log).unwrap_or_default()
        + &std::fs::read_to_string(dir.path().join("demo.err")).unwrap_or_default();
    let logs = ["master", "slave", "pypi"]
        .iter()
        .map(|n| {
            let p = dir.path().join("demo/log").join(format!("{n}.log"));
            format!(
                "--- {n}:\n{}",
                std::fs::read_to_string(p).unwrap_or_default()
            )
        })
        .collect::<String>();
    assert!(
        status.is_some_and(|s| s.success()),
        "demo --check: {status:?}\n{out}\n{logs}"
    );
    assert!(out.contains("demo: check passed"), "{out}");
    assert!(out.contains("pip downloaded demo_hello-1.0-"), "{out}");
    // Everything it started is gone: the pid files were removed on stop.
    let run = dir.path().join("demo/run");
    for name in ["pypi", "master", "slave", "web"] {
        assert!(
            !run.join(format!("{name}.pid")).exists(),
            "{name} left running"
        );
    }
}

/// Drops the demo's database and role however the test ends.
struct DropDb(String);

impl Drop for DropDb {
    fn drop(&mut self) {
        for sql in [
            format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.0),
            format!("DROP ROLE IF EXISTS \"{}\"", self.0),
        ] {
            let _ = Command::new("psql")
                .args(["-d", "postgres", "-qc", &sql])
                .stdout(Stdio::null())
                .status();
        }
    }
}
