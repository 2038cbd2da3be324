//! piw-monitor against a stand-in master made of real sockets: a PUB on
//! the status queue and a PULL on the control queue, answering HELLO the
//! way piwheels 0.23 does (MasterHello, STATS, then each slave's HELLO,
//! STATS and last reply). `--once` runs as a plain process; the terminal UI
//! runs under tmux, driven with send-keys and read with capture-pane.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::TempDir;
use piwheels::protocol::{
    ControlMessage, MasterHello, MasterStats, Record, SlaveHello, SlaveStats, SlaveStatus,
    StatusMessage, TimeDelta, Value, WireMessage,
};

const MONITOR: &str = env!("CARGO_BIN_EXE_piw-monitor");

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn master_hello() -> MasterHello {
    MasterHello {
        timestamp: now() - chrono::TimeDelta::hours(2),
        label: "standin-master".into(),
        os_name: "Debian GNU/Linux".into(),
        os_version: "12".into(),
        board_revision: "d03114".into(),
        board_serial: "100000001234abcd".into(),
    }
}

fn master_stats() -> MasterStats {
    MasterStats {
        timestamp: now(),
        packages_built: 31_337,
        builds_last_hour: vec![("cp311".into(), 42)],
        builds_time: TimeDelta::from_secs(3600).unwrap(),
        builds_size: 123_456_789,
        builds_pending: vec![("cp311".into(), 17), ("cp39".into(), 3)],
        new_last_hour: 9,
        files_count: 654_321,
        downloads_last_hour: 4_242,
        downloads_last_month: 1_000_000,
        downloads_all: 99_000_000,
        disk_size: 1 << 40,
        disk_free: 1 << 39,
        mem_size: 8 << 30,
        mem_free: 6 << 30,
        swap_size: 1 << 30,
        swap_free: 1 << 30,
        load_average: 0.75,
        cpu_temp: 51.5,
    }
}

fn slave_hello(label: &str) -> SlaveHello {
    SlaveHello {
        build_timeout: TimeDelta::from_secs(10_800).unwrap(),
        busy_timeout: TimeDelta::from_secs(600).unwrap(),
        py_version: "311".into(),
        native_abi: "cp311".into(),
        native_platform: "linux_armv7l".into(),
        label: label.into(),
        os_name: "Raspbian GNU/Linux".into(),
        os_version: "12".into(),
        board_revision: "a020d3".into(),
        board_serial: "00000000deadbeef".into(),
    }
}

fn slave_msg(id: u64, msg: &str, data: Value) -> StatusMessage {
    StatusMessage::Slave(SlaveStatus {
        slave_id: id,
        timestamp: now(),
        msg: msg.into(),
        data,
    })
}

/// A master that only knows how to answer monitors.
struct StandIn {
    status: zmq::Socket,
    control: zmq::Socket,
    /// Slaves replayed on HELLO: (id, label, last reply, its data).
    slaves: Vec<(u64, String, String, Value)>,
    /// Every control message received.
    received: Vec<ControlMessage>,
    status_addr: String,
    control_addr: String,
    _ctx: zmq::Context,
}

impl StandIn {
    fn new(dir: &TempDir) -> StandIn {
        let ctx = zmq::Context::new();
        let status_addr = format!("ipc://{}", dir.path().join("status").display());
        let control_addr = format!("ipc://{}", dir.path().join("control").display());
        let status = ctx.socket(zmq::PUB).unwrap();
        status.set_linger(0).unwrap();
        status.bind(&status_addr).unwrap();
        let control = ctx.socket(zmq::PULL).unwrap();
        control.set_linger(0).unwrap();
        control.bind(&control_addr).unwrap();
        StandIn {
            status,
            control,
            slaves: Vec::new(),
            received: Vec::new(),
            status_addr,
            control_addr,
            _ctx: ctx,
        }
    }

    fn publish(&self, msg: &StatusMessage) {
        self.status.send(msg.encode(), 0).unwrap();
    }

    /// piwheels 0.23's answer to a monitor's HELLO.
    fn replay(&self) {
        self.publish(&StatusMessage::Hello(master_hello()));
        self.publish(&StatusMessage::Stats(master_stats()));
        for (id, label, msg, data) in &self.slaves {
            self.publish(&slave_msg(*id, "HELLO", slave_hello(label).to_value()));
            let stats = SlaveStats {
                timestamp: now(),
                disk_size: 32 << 30,
                disk_free: 21 << 30,
                mem_size: 4 << 30,
                mem_free: 3 << 30,
                swap_size: 0,
                swap_free: 0,
                load_average: 1.5,
                cpu_temp: 61.5,
            };
            self.publish(&slave_msg(*id, "STATS", stats.to_value()));
            self.publish(&slave_msg(*id, msg, data.clone()));
        }
    }

    /// Takes control messages for up to `wait`, answering HELLOs.
    fn pump(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if self
                .control
                .poll(zmq::POLLIN, left.as_millis() as i64)
                .unwrap()
                > 0
            {
                let frame = self.control.recv_bytes(0).unwrap();
                let msg = ControlMessage::decode(&frame).expect("a valid control message");
                if msg == ControlMessage::Hello {
                    self.replay();
                }
                self.received.push(msg);
            }
            if Instant::now() >= deadline {
                return;
            }
        }
    }

    /// Pumps until `msg` arrives (true) or `limit` passes (false).
    fn expect(&mut self, msg: ControlMessage, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.received.contains(&msg) {
                return true;
            }
            self.pump(Duration::from_millis(50));
        }
        self.received.contains(&msg)
    }
}

fn building(pkg: &str, ver: &str) -> (String, Value) {
    (
        "BUILD".into(),
        Value::Array(vec![Value::text(pkg), Value::text(ver)]),
    )
}

fn once(standin: &mut StandIn, timeout: &str) -> Output {
    let mut child = Command::new(MONITOR)
        .args([
            "--once",
            "--timeout",
            timeout,
            "--status-queue",
            &standin.status_addr,
            "--control-queue",
            &standin.control_addr,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "piw-monitor --once did not finish"
        );
        standin.pump(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn once_prints_the_master_and_every_slave() {
    let dir = TempDir::new("monitor-once");
    let mut standin = StandIn::new(&dir);
    let (msg, data) = building("numpy", "1.26.4");
    standin.slaves.push((3, "pi4-alpha".into(), msg, data));
    standin
        .slaves
        .push((5, "pi3-beta".into(), "SLEEP".into(), Value::Bool(false)));
    let out = once(&mut standin, "10");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}\n{text}");
    assert!(standin.received.contains(&ControlMessage::Hello));
    assert!(
        text.starts_with("Master standin-master (Debian GNU/Linux 12, board d03114), up 2h 00m"),
        "{text}"
    );
    assert!(
        text.contains(
            "Built 31337 packages, 42 in the last hour (cp311 42); pending: cp311 17, cp39 3"
        ),
        "{text}"
    );
    assert!(text.contains("Downloads: 4242 in the last hour"), "{text}");
    assert!(text.contains("2 build slave(s)"), "{text}");
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("pi")).collect();
    assert!(
        rows.iter().any(|l| l.starts_with("building")
            && l.contains(" 3 ")
            && l.contains("pi4-alpha")
            && l.contains("61.5°C")
            && l.contains("21.0 GiB")
            && l.ends_with("Building numpy 1.26.4")),
        "{text}"
    );
    assert!(
        rows.iter().any(|l| l.starts_with("idle")
            && l.contains("pi3-beta")
            && l.ends_with("Waiting for jobs")),
        "{text}"
    );
}

#[test]
fn once_without_a_master_fails_clearly() {
    let dir = TempDir::new("monitor-none");
    let start = Instant::now();
    let out = Command::new(MONITOR)
        .args([
            "--once",
            "--timeout",
            "1",
            "--status-queue",
            &format!("ipc://{}", dir.path().join("status").display()),
            "--control-queue",
            &format!("ipc://{}", dir.path().join("control").display()),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(start.elapsed() < Duration::from_secs(10));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no answer from the master within 1.0s"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    let out = Command::new(MONITOR)
        .args(["--timeout", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A private tmux server, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Tmux {
        let have = || {
            Command::new("tmux")
                .arg("-V")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        // A fresh CI machine: install it (after reading the package lists
        // if the first try finds none).
        for update in [false, true] {
            if have() || !piwheels::running_as_root() {
                break;
            }
            if update {
                let _ = Command::new("apt-get").args(["update", "-qq"]).output();
            }
            let _ = Command::new("apt-get")
                .args(["install", "-y", "-qq", "tmux"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .output();
        }
        assert!(
            have(),
            "tmux is needed for this test (apt-get install tmux)"
        );
        Tmux {
            socket: format!("piwtest-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .unwrap()
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "mon"]).stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        assert!(self.run(&["send-keys", "-t", "mon", keys]).status.success());
    }

    fn alive(&self) -> bool {
        self.run(&["has-session", "-t", "mon"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// Pumps the stand-in until the screen shows `text`.
fn wait_screen(tmux: &Tmux, standin: &mut StandIn, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let screen = tmux.screen();
        if screen.contains(text) {
            return screen;
        }
        assert!(
            Instant::now() < deadline,
            "{text:?} never appeared; the screen:\n{screen}"
        );
        standin.pump(Duration::from_millis(50));
    }
}

#[test]
fn the_terminal_ui_shows_slaves_live_and_sends_commands() {
    let dir = TempDir::new("monitor-tui");
    let mut standin = StandIn::new(&dir);
    let (msg, data) = building("scipy", "1.13.0");
    standin.slaves.push((7, "pi5-gamma".into(), msg, data));
    let tmux = Tmux::new();
    let cmd = format!(
        "{MONITOR} --status-queue {} --control-queue {}",
        standin.status_addr, standin.control_addr
    );
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "mon",
        "-x",
        "150",
        "-y",
        "40",
        &cmd,
    ]);
    assert!(started.status.success(), "{started:?}");

    // The replay: the master and the slave it knows.
    let screen = wait_screen(&tmux, &mut standin, "pi5-gamma");
    assert!(screen.contains("Master standin-master"), "{screen}");
    let screen = wait_screen(&tmux, &mut standin, "Building scipy 1.13.0");
    assert!(screen.contains("Build slaves (1)"), "{screen}");

    // A slave that appears later shows up live.
    standin.publish(&slave_msg(9, "HELLO", slave_hello("pi-zeta").to_value()));
    standin.publish(&slave_msg(9, "SLEEP", Value::Bool(false)));
    let screen = wait_screen(&tmux, &mut standin, "pi-zeta");
    assert!(screen.contains("Build slaves (2)"), "{screen}");

    // p pauses the master: SLEEP null reaches the control queue.
    tmux.keys("p");
    assert!(
        standin.expect(ControlMessage::Sleep(None), Duration::from_secs(10)),
        "{:?}",
        standin.received
    );
    wait_screen(&tmux, &mut standin, "Sent SLEEP (pause the master)");

    // s sleeps the selected slave (the first seen, 7); w wakes it.
    tmux.keys("s");
    assert!(standin.expect(ControlMessage::Sleep(Some(7)), Duration::from_secs(10)));
    tmux.keys("w");
    assert!(standin.expect(ControlMessage::Wake(Some(7)), Duration::from_secs(10)));
    // pi-zeta sorts first: Up selects it; K asks, y confirms the kill.
    tmux.keys("Up");
    tmux.keys("K");
    wait_screen(&tmux, &mut standin, "Kill build slave");
    tmux.keys("y");
    assert!(
        standin.expect(ControlMessage::Kill(Some(9)), Duration::from_secs(10)),
        "{:?}",
        standin.received
    );
    tmux.keys("r");
    assert!(standin.expect(ControlMessage::Wake(None), Duration::from_secs(10)));

    // q leaves the monitor; the master is not told anything.
    let before = standin.received.len();
    tmux.keys("q");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux.alive() {
        assert!(Instant::now() < deadline, "the monitor did not quit");
        standin.pump(Duration::from_millis(50));
    }
    standin.pump(Duration::from_millis(100));
    assert!(
        standin.received[before..]
            .iter()
            .all(|m| *m == ControlMessage::Hello),
        "{:?}",
        standin.received
    );
}

#[test]
fn once_against_our_own_master() {
    let master = common::MasterProcess::start(&[]);
    let out = Command::new(MONITOR)
        .args([
            "--once",
            "--status-queue",
            &master.ipc("status"),
            "--control-queue",
            &master.ipc("control"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{text}\nmaster: {}",
        String::from_utf8_lossy(&out.stderr),
        master.stderr()
    );
    let host = piwheels::info::hostname();
    assert!(text.starts_with(&format!("Master {host} (")), "{text}");
}
