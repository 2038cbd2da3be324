//! The master process as an operator sees it: it starts, tells systemd it
//! is ready, answers a monitor's HELLO, survives garbage on its control
//! queue, and stops cleanly on QUIT, SIGTERM and SIGINT; bad options and
//! busy ports give one-line errors and the documented exit codes.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{MasterProcess, Monitor, unhex};
use piwheels::protocol::{ControlMessage, StatusMessage, WireMessage};

const T: Duration = Duration::from_secs(20);

fn hello_reply(m: &Monitor) -> Option<StatusMessage> {
    let hello = ControlMessage::Hello.encode();
    m.request_until(&hello, T, |f| {
        matches!(StatusMessage::decode(f), Ok(StatusMessage::Hello(_)))
    })
    .map(|f| StatusMessage::decode(&f).unwrap())
}

#[test]
fn answers_hello_and_quits_cleanly() {
    let mut master = MasterProcess::start(&[]);
    let monitor = Monitor::connect(&master);
    let Some(StatusMessage::Hello(hello)) = hello_reply(&monitor) else {
        panic!("no HELLO on the status queue; stderr:\n{}", master.stderr());
    };
    assert_eq!(hello.label, piwheels::info::hostname());
    assert!((chrono::Utc::now() - hello.timestamp).num_seconds().abs() < 60);
    monitor.send(&ControlMessage::Quit.encode());
    master.wait_notify("STOPPING=1", T).unwrap();
    let status = master.wait_exit(T);
    assert!(
        status.success(),
        "exit {status}; stderr:\n{}",
        master.stderr()
    );
    assert!(master.stderr().contains("QUIT"), "{}", master.stderr());
}

#[test]
fn sigterm_and_sigint_stop_it_with_status_zero() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut master = MasterProcess::start(&[]);
        master.signal(sig);
        master.wait_notify("STOPPING=1", T).unwrap();
        let status = master.wait_exit(T);
        assert!(status.success(), "signal {sig}: exit {status}");
    }
}

#[test]
fn control_queue_garbage_is_logged_and_the_loop_keeps_serving() {
    let mut master = MasterProcess::start(&[]);
    let monitor = Monitor::connect(&master);
    // Every rejected control message in piwheels' own vectors (including the
    // ones that crash piwheels' master), plus frames that are not CBOR at
    // all, a multi-part message and a large frame.
    let vectors: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/wire-vectors.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut sent = 0;
    for v in vectors["negative"].as_array().unwrap() {
        if v["protocol"] == "master_control" || v["protocol"] == "slave_driver" {
            monitor.send(&unhex(v["hex"].as_str().unwrap()));
            sent += 1;
        }
    }
    assert!(sent > 10);
    monitor.send(b"");
    monitor.send(&[0xff; 7]);
    monitor.send(&vec![0x9b; 60_000]);
    monitor
        .control
        .send_multipart([&b"QUIT"[..], &b"x"[..]], 0)
        .unwrap();
    assert!(
        hello_reply(&monitor).is_some(),
        "master stopped serving; stderr:\n{}",
        master.stderr()
    );
    assert!(master.child.try_wait().unwrap().is_none());
    let log = master.stderr();
    assert!(log.contains("unable to deserialize data"), "{log}");
    assert!(log.contains("unknown message"), "{log}");
    master.signal(libc::SIGTERM);
    assert!(master.wait_exit(T).success());
}

#[test]
fn sleep_and_wake_pause_and_resume_the_master() {
    let mut master = MasterProcess::start(&[]);
    let monitor = Monitor::connect(&master);
    assert!(hello_reply(&monitor).is_some());
    monitor.send(&ControlMessage::Sleep(None).encode());
    monitor.send(&ControlMessage::Wake(None).encode());
    assert!(hello_reply(&monitor).is_some());
    master.signal(libc::SIGTERM);
    assert!(master.wait_exit(T).success());
    let log = master.stderr();
    let pause = log.find("pausing operations").expect(&log);
    let resume = log.find("resuming operations").expect(&log);
    assert!(pause < resume);
}

fn run_master(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_piw-master"))
        .args(args)
        .env("PIWHEELS_ALLOW_ROOT", "1")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn help_and_version_exit_zero() {
    let (code, text) = run_master(&["--help"]);
    assert_eq!(code, 0);
    for opt in [
        "--dsn",
        "--output-path",
        "--pypi-json",
        "--debug",
        "--stats-queue",
    ] {
        assert!(text.contains(opt), "{text}");
    }
    let (code, text) = run_master(&["--version"]);
    assert_eq!(code, 0);
    assert_eq!(text.trim(), piwheels::VERSION);
}

#[test]
fn bad_options_exit_two_with_one_line() {
    for args in [
        &["--no-such-option"][..],
        &["--slave-queue", "inproc://x"],
        &["-c", "/nonexistent/piwheels.conf"],
        &["--dsn"],
    ] {
        let (code, text) = run_master(args);
        assert_eq!(code, 2, "{args:?}: {text}");
        assert_eq!(text.trim().lines().count(), 1, "{args:?}: {text}");
    }
}

#[test]
fn a_busy_port_is_a_fatal_error_naming_the_option() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let addr = format!("tcp://127.0.0.1:{port}");
    let mut master = MasterProcess::spawn(&["--slave-queue", &addr]);
    let status = master.wait_exit(T);
    assert_eq!(status.code(), Some(1), "{}", master.stderr());
    assert!(
        master.stderr().contains("--slave-queue"),
        "{}",
        master.stderr()
    );
}

#[test]
fn refuses_root_without_the_override() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_piw-master"))
        .env_remove("PIWHEELS_ALLOW_ROOT")
        .env("HOME", "/nonexistent")
        .args(["--control-queue", "ipc:///nonexistent/c"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("root"));
}
