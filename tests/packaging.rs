//! What the Debian packages ship: the `/etc/piwheels.conf` generated from
//! piw-master's option table, systemd units that `systemd-analyze verify`
//! accepts, and the watchdog pings `WatchdogSec` in the master's unit needs.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{MasterProcess, TempDir, free_port};
use piwheels::config::master::PROGRAM;
use piwheels::config::sample::{DEBIAN_HEADER, DEBIAN_SETTINGS, sample_config};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Regenerate with `PIW_BLESS=1 cargo test --test packaging`.
#[test]
fn shipped_conf_lists_every_master_option() {
    let path = Path::new(ROOT).join("debian/piwheels.conf");
    let want = sample_config(&PROGRAM, DEBIAN_HEADER, DEBIAN_SETTINGS);
    if std::env::var_os("PIW_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let shipped = std::fs::read_to_string(&path).unwrap();
    let keys: Vec<String> = shipped
        .lines()
        .filter_map(|l| l.trim_start_matches('#').split_once(" = "))
        .map(|(k, _)| k.to_string())
        .collect();
    for opt in PROGRAM.opts {
        assert!(
            keys.iter().any(|k| k == opt.key()),
            "{} is not in debian/piwheels.conf",
            opt.key()
        );
    }
    assert_eq!(
        shipped, want,
        "debian/piwheels.conf is stale: PIW_BLESS=1 cargo test --test packaging"
    );
    // The package's settings are live and what the master reads.
    let parsed = piwheels::config::parse_config_text(&shipped).unwrap();
    assert!(
        parsed
            .iter()
            .any(|e| e.key == "output-path" && e.value.as_deref() == Some("/var/www/piwheels"))
    );
}

#[test]
fn shipped_conf_is_accepted_by_the_master() {
    let path = Path::new(ROOT).join("debian/piwheels.conf");
    let out = Command::new(env!("CARGO_BIN_EXE_piw-master"))
        .args(["-c", path.to_str().unwrap(), "--help"])
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert!(out.status.success());
    // Parse it for real: a bad value would be a configuration error (exit 2)
    // before the master touches the database it cannot reach here.
    let cfg = PROGRAM
        .parse(vec!["-c".into(), path.as_os_str().into()], &[])
        .expect("the shipped configuration parses");
    let piwheels::config::Parsed::Run(settings) = cfg else {
        panic!("not a run");
    };
    let master = piwheels::config::master::MasterConfig::from_settings(&settings).unwrap();
    assert_eq!(master.control_queue, "ipc:///run/piwheels/control");
    assert_eq!(master.output_path, Path::new("/var/www/piwheels"));
}

#[test]
fn systemd_units_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("SKIPPED: systemd-analyze is not installed");
        return;
    }
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_piw-master"))
        .parent()
        .unwrap();
    let dir = TempDir::new("units");
    for unit in ["piwheels-master.service", "piwheels-slave.service"] {
        // verify checks that ExecStart exists: point it at the built binaries.
        let text = std::fs::read_to_string(Path::new(ROOT).join(unit)).unwrap();
        let text = text.replace("/usr/bin/", &format!("{}/", bin_dir.display()));
        let path = dir.path().join(unit);
        std::fs::write(&path, text).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Complaints about other units of this machine are not ours.
        let ours: Vec<&str> = stderr.lines().filter(|l| l.contains(unit)).collect();
        assert!(
            out.status.success() && ours.is_empty(),
            "{unit}: {}\n{stderr}",
            out.status
        );
    }
}

#[test]
fn master_unit_is_notify_with_a_watchdog() {
    let text = std::fs::read_to_string(Path::new(ROOT).join("piwheels-master.service")).unwrap();
    for line in [
        "Type=notify",
        "Restart=on-failure",
        "User=piwheels",
        "NoNewPrivileges=true",
        "RuntimeDirectory=piwheels",
        "ReadWritePaths=/var/www/piwheels",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line}");
    }
    assert!(text.lines().any(|l| l.starts_with("WatchdogSec=")));
}

/// With `WATCHDOG_USEC` set the master pings at half the interval, so
/// systemd does not kill a healthy master; without it, never.
#[test]
fn master_sends_watchdog_pings_when_asked() {
    let db = piwheels::testing::TestDb::new();
    let dir = TempDir::new("watchdog");
    std::fs::create_dir_all(dir.path().join("www")).unwrap();
    let notify_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let mut args = MasterProcess::args(dir.path(), free_port(), free_port());
    args.extend(["--dsn".into(), db.user_dsn().to_string()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_piw-master"))
        .args(&args)
        .env("PIWHEELS_ALLOW_ROOT", "1")
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .env("HOME", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen: Vec<(Instant, String)> = Vec::new();
    let mut buf = [0u8; 4096];
    notify
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while Instant::now() < deadline && seen.iter().filter(|(_, m)| m == "WATCHDOG=1").count() < 3 {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("master exited: {status}");
        }
        if let Ok(n) = notify.recv(&mut buf) {
            for line in String::from_utf8_lossy(&buf[..n]).lines() {
                seen.push((Instant::now(), line.to_string()));
            }
        }
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let pings: Vec<Instant> = seen
        .iter()
        .filter(|(_, m)| m == "WATCHDOG=1")
        .map(|(t, _)| *t)
        .collect();
    let msgs: Vec<&str> = seen.iter().map(|(_, m)| m.as_str()).collect();
    assert!(pings.len() >= 3, "pings: {msgs:?}");
    assert!(msgs.contains(&"READY=1"), "{msgs:?}");
    // Pinged at about half of 400 ms: never as late as the full interval.
    for pair in pings.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap < Duration::from_millis(390), "gap {gap:?}");
    }
}
