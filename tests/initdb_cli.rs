//! The piw-initdb binary: prompts, -y, refusals and exit codes.

use std::io::Write;
use std::process::{Command, Stdio};

use piwheels::initdb::{self, DbVersion};
use piwheels::testing::TestDb;

fn initdb(args: &[&str], stdin: &str) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_piw-initdb"))
        .args(args)
        .env("HOME", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn asks_first_and_does_nothing_on_no() {
    let db = TestDb::empty();
    let (code, out) = initdb(&["-d", db.admin_dsn(), "-u", db.username()], "n\n");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("[Y/n]") && out.contains("Nothing was changed"),
        "{out}"
    );
    assert_eq!(
        initdb::detect_version(&mut db.admin()).unwrap(),
        DbVersion::Empty
    );
}

#[test]
fn creates_on_yes_then_reports_current() {
    let db = TestDb::empty();
    let (code, out) = initdb(&["-d", db.admin_dsn(), "-u", db.username()], "\n");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("now at version 0.23"), "{out}");
    let (code, out) = initdb(
        &["--dsn", db.admin_dsn(), "--user", db.username(), "-y"],
        "",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("current version"), "{out}");
    assert!(!out.contains("[Y/n]"));
}

#[test]
fn refusals_exit_non_zero() {
    let db = TestDb::empty();
    let (code, out) = initdb(&["-d", db.user_dsn(), "-u", db.username(), "-y"], "");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not a cluster superuser"), "{out}");
    let (code, out) = initdb(
        &["-d", db.admin_dsn(), "-u", "piwtest_nobody_here", "-y"],
        "",
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not exist"), "{out}");
    let (code, _) = initdb(&["--no-such-option"], "");
    assert_eq!(code, 2);
    assert_eq!(
        initdb::detect_version(&mut db.admin()).unwrap(),
        DbVersion::Empty
    );
}
