//! Helpers shared by the slave_protocol, fault_* and hostile_* tests: a seeded database,
//! slave messages, and polls with deadlines.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use chrono::Utc;
use piwheels::master::file_juggler::hex;
use piwheels::protocol::{BuildResult, FileState, SlaveHello, SlaveRequest, SlaveStats, TimeDelta};
use piwheels::testing::TestDb;
use sha2::{Digest, Sha256};

/// A database with the cp311 ABI and one version of each package to build.
pub fn seeded_db(jobs: &[(&str, &str)]) -> TestDb {
    let tdb = TestDb::new();
    seed(&tdb, jobs);
    tdb
}

pub fn seed(tdb: &TestDb, jobs: &[(&str, &str)]) {
    tdb.admin()
        .batch_execute("INSERT INTO build_abis (abi_tag) VALUES ('cp311')")
        .unwrap();
    let mut db = tdb.database();
    for (p, v) in jobs {
        db.add_new_package(p, "", "").unwrap();
        db.add_new_package_version(p, v, None, "").unwrap();
    }
}

/// A HELLO with the given busy timeout (expiry) and build timeout (the
/// exclusion window of the jobs it is given).
pub fn hello(busy_secs: i64, build_secs: i64, label: &str) -> SlaveRequest {
    SlaveRequest::Hello(SlaveHello {
        build_timeout: TimeDelta::from_secs(build_secs).unwrap(),
        busy_timeout: TimeDelta::from_secs(busy_secs).unwrap(),
        py_version: "311".into(),
        native_abi: "cp311".into(),
        native_platform: "linux_armv7l".into(),
        label: label.into(),
        os_name: "Raspbian GNU/Linux".into(),
        os_version: "12 (bookworm)".into(),
        board_revision: "c03114".into(),
        board_serial: "10000000a3f6b2c1".into(),
    })
}

pub fn stats() -> SlaveStats {
    SlaveStats {
        timestamp: Utc::now(),
        disk_size: 31_254_904_832,
        disk_free: 12_345_678_901,
        mem_size: 3_978_170_368,
        mem_free: 2_147_483_648,
        swap_size: 104_853_504,
        swap_free: 104_853_504,
        load_average: 0.25,
        cpu_temp: 45.5,
    }
}

pub fn wheel(name: &str, content: &[u8]) -> FileState {
    let mut h = Sha256::new();
    h.update(content);
    let parts: Vec<&str> = name.trim_end_matches(".whl").split('-').collect();
    FileState {
        filename: name.into(),
        filesize: content.len() as u64,
        filehash: hex(&h.finalize()),
        package_tag: parts[0].into(),
        package_version_tag: parts[1].into(),
        py_version_tag: parts[2].into(),
        abi_tag: parts[3].into(),
        platform_tag: parts[4].into(),
        requires_python: None,
        dependencies: vec![
            ("apt".into(), vec![]),
            ("pip".into(), vec![]),
            ("".into(), vec![]),
        ],
        location: "/simple".into(),
    }
}

pub fn built(files: Vec<FileState>) -> SlaveRequest {
    SlaveRequest::Built(BuildResult {
        status: true,
        duration: TimeDelta::from_secs(12).unwrap(),
        output: "building...\ndone\n".into(),
        files,
    })
}

/// Polls `cond` every 50 ms until it holds; panics with `what()` after
/// `timeout`.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool, what: impl Fn() -> String) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "{}", what());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Row count of a table (builds, files, ...).
pub fn count(tdb: &TestDb, table: &str) -> i64 {
    tdb.admin()
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .unwrap()
        .get(0)
}

/// The resident set of a process, in KiB.
pub fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// SIGKILLs the master and starts it again on the same database, output
/// path, ports and sockets, with `extra` options; waits for READY. The new
/// process's stderr is appended to the old one's.
pub fn kill_and_restart(m: &mut crate::common::MasterProcess, extra: &[&str]) {
    m.signal(libc::SIGKILL);
    let _ = m.child.wait();
    let mut args = crate::common::MasterProcess::args(m.dir.path(), m.slave_port, m.file_port);
    args.push("--dsn".into());
    args.push(m.db.user_dsn().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    let stderr = std::fs::OpenOptions::new()
        .append(true)
        .open(&m.stderr_path)
        .unwrap();
    m.child = std::process::Command::new(env!("CARGO_BIN_EXE_piw-master"))
        .args(&args)
        .env("PIWHEELS_ALLOW_ROOT", "1")
        .env("NOTIFY_SOCKET", m.dir.path().join("notify"))
        .env("HOME", m.dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    m.wait_notify("READY=1", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}; stderr:\n{}", m.stderr()));
}

/// The serial the master stored.
pub fn stored_serial(tdb: &TestDb) -> i64 {
    tdb.admin()
        .query_one("SELECT pypi_serial FROM configuration", &[])
        .unwrap()
        .get(0)
}
