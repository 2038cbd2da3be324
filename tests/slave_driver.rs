//! The slave driver, transition by transition, with no sockets: requests go
//! in as piwheels' bytes, replies come out, and the database (real
//! PostgreSQL), the file juggler (real files) and the recording sinks show
//! what happened. Time is passed in, so expiry is tested without waiting.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::TempDir;
use piwheels::db::Database;
use piwheels::master::file_juggler::{FileJuggler, hex};
use piwheels::master::slave_driver::queue::AbiQueue;
use piwheels::master::slave_driver::{Env, MAX_SLAVES, SlaveControl, SlaveDriver};
use piwheels::master::tasks::{SkipQueue, Stat, WebRequest};
use piwheels::protocol::file::MasterFrame;
use piwheels::protocol::{
    BuildResult, FileState, SlaveHello, SlaveReply, SlaveRequest, SlaveStats, StatusMessage,
    TimeDelta, WireMessage,
};
use piwheels::testing::TestDb;
use sha2::{Digest, Sha256};

/// Everything a test drives the driver with.
struct Rig {
    driver: SlaveDriver,
    db: Database,
    tdb: TestDb,
    files: FileJuggler,
    out: TempDir,
    web: Vec<WebRequest>,
    stats: Vec<Stat>,
    status: Vec<StatusMessage>,
    now: Instant,
}

impl Rig {
    fn new() -> Rig {
        let tdb = TestDb::new();
        tdb.admin()
            .batch_execute("INSERT INTO build_abis (abi_tag) VALUES ('cp311'), ('cp39')")
            .unwrap();
        let mut db = tdb.database();
        for (p, v) in [("foo", "1.0"), ("foo", "2.0"), ("bar", "0.1")] {
            db.add_new_package(p, "", "").unwrap();
            db.add_new_package_version(p, v, None, "").unwrap();
        }
        let out = TempDir::new("driver");
        let files = FileJuggler::new(out.path()).unwrap();
        Rig {
            driver: SlaveDriver::new("http://pypi.example/simple"),
            db,
            tdb,
            files,
            out,
            web: vec![],
            stats: vec![],
            status: vec![],
            now: Instant::now(),
        }
    }

    fn send(&mut self, identity: &[u8], req: &SlaveRequest) -> Option<SlaveReply> {
        self.send_bytes(identity, &req.encode())
    }

    fn send_bytes(&mut self, identity: &[u8], bytes: &[u8]) -> Option<SlaveReply> {
        let mut env = Env {
            db: &mut self.db,
            files: &mut self.files,
            web: &mut self.web,
            stats: &mut self.stats,
            status: &mut self.status,
            now: self.now,
            utc: Utc::now(),
        };
        let reply = self.driver.handle(identity, bytes, &mut env);
        // Every reply must be valid on the wire.
        if let Some(r) = &reply {
            assert_eq!(&SlaveReply::decode(&r.encode()).unwrap(), r);
        }
        reply
    }

    fn queue(&mut self, abi: &str, jobs: &[(&str, &str)]) {
        let mut q = AbiQueue::new();
        for (p, v) in jobs {
            q.push(p, v);
        }
        let abis = vec!["cp311".to_string(), "cp39".to_string()];
        self.driver.set_queues(
            HashMap::from([(abi.to_string(), q)]),
            &abis,
            self.now,
            &mut self.stats,
        );
    }

    fn expire(&mut self) {
        let mut env = Env {
            db: &mut self.db,
            files: &mut self.files,
            web: &mut self.web,
            stats: &mut self.stats,
            status: &mut self.status,
            now: self.now,
            utc: Utc::now(),
        };
        self.driver.expire(&mut env);
    }

    /// Plays the file-transfer peer for `slave_id` until DONE.
    fn transfer(&mut self, identity: &[u8], slave_id: u64, content: &[u8]) {
        let mut queue = self.files.on_frames(
            identity,
            &[b"HELLO".to_vec(), slave_id.to_string().into_bytes()],
        );
        while let Some(frame) = queue.pop() {
            match frame {
                MasterFrame::Fetch { offset, length } => {
                    let data = content[offset as usize..(offset + length) as usize].to_vec();
                    queue.extend(self.files.on_frames(
                        identity,
                        &[b"CHUNK".to_vec(), offset.to_string().into_bytes(), data],
                    ));
                }
                MasterFrame::Done => return,
            }
        }
        panic!("transfer never finished");
    }

    fn builds(&self) -> Vec<(String, String, bool, i32)> {
        self.tdb
            .admin()
            .query(
                "SELECT package, version, status, built_by FROM builds ORDER BY build_id",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    }

    fn slave_msgs(&self) -> Vec<String> {
        self.status
            .iter()
            .filter_map(|m| match m {
                StatusMessage::Slave(s) => Some(s.msg.clone()),
                _ => None,
            })
            .collect()
    }
}

fn hello(busy_secs: i64) -> SlaveRequest {
    SlaveRequest::Hello(SlaveHello {
        build_timeout: TimeDelta::from_secs(3 * 3600).unwrap(),
        busy_timeout: TimeDelta::from_secs(busy_secs).unwrap(),
        py_version: "311".into(),
        native_abi: "cp311".into(),
        native_platform: "linux_armv7l".into(),
        label: "pi-1".into(),
        os_name: "Raspbian GNU/Linux".into(),
        os_version: "12 (bookworm)".into(),
        board_revision: "c03114".into(),
        board_serial: "1".into(),
    })
}

fn stats() -> SlaveStats {
    SlaveStats {
        timestamp: Utc::now(),
        disk_size: 1 << 34,
        disk_free: 1 << 33,
        mem_size: 1 << 32,
        mem_free: 1 << 31,
        swap_size: 0,
        swap_free: 0,
        load_average: 0.5,
        cpu_temp: 45.0,
    }
}

fn idle() -> SlaveRequest {
    SlaveRequest::Idle(stats())
}

fn busy() -> SlaveRequest {
    SlaveRequest::Busy(stats())
}

fn wheel(name: &str, content: &[u8]) -> FileState {
    let mut h = Sha256::new();
    h.update(content);
    let stem = name.trim_end_matches(".whl");
    let parts: Vec<&str> = stem.split('-').collect();
    FileState {
        filename: name.into(),
        filesize: content.len() as u64,
        filehash: hex(&h.finalize()),
        package_tag: parts[0].into(),
        package_version_tag: parts[1].into(),
        py_version_tag: parts[parts.len() - 3].into(),
        abi_tag: parts[parts.len() - 2].into(),
        platform_tag: parts[parts.len() - 1].into(),
        requires_python: Some(">=3.7".into()),
        dependencies: vec![
            ("apt".into(), vec!["libfoo1".into()]),
            ("pip".into(), vec!["six".into()]),
            ("".into(), vec![]),
        ],
        location: "/simple".into(),
    }
}

fn built(status: bool, files: Vec<FileState>) -> SlaveRequest {
    SlaveRequest::Built(BuildResult {
        status,
        duration: TimeDelta::from_secs(42).unwrap(),
        output: "Collecting foo\nBuilt!\n".into(),
        files,
    })
}

fn build(p: &str, v: &str) -> Option<SlaveReply> {
    Some(SlaveReply::Build {
        package: p.into(),
        version: v.into(),
    })
}

fn ack(id: u64) -> Option<SlaveReply> {
    Some(SlaveReply::Ack {
        slave_id: id,
        pypi_url: "http://pypi.example/simple".into(),
    })
}

#[test]
fn a_whole_build_from_hello_to_done() {
    let mut r = Rig::new();
    let s = b"slave-a";
    assert_eq!(r.send(s, &hello(300)), ack(1));
    // No queue yet: SLEEP, not paused.
    assert_eq!(
        r.send(s, &idle()),
        Some(SlaveReply::Sleep { paused: false })
    );
    r.queue("cp311", &[("foo", "1.0"), ("bar", "0.1")]);
    assert_eq!(r.send(s, &idle()), build("foo", "1.0"));
    assert_eq!(r.send(s, &busy()), Some(SlaveReply::Cont));
    assert_eq!(r.send(s, &busy()), Some(SlaveReply::Cont));
    let content = vec![42u8; 200_000];
    let w = wheel("foo-1.0-cp311-cp311-linux_armv7l.whl", &content);
    assert_eq!(
        r.send(s, &built(true, vec![w.clone()])),
        Some(SlaveReply::Send {
            filename: w.filename.clone()
        })
    );
    r.transfer(b"file-a", 1, &content);
    assert_eq!(r.send(s, &SlaveRequest::Sent), Some(SlaveReply::Done));
    // The wheel and its armv6l twin landed; the build is in the database.
    let dir = r.out.path().join("simple/foo");
    assert_eq!(std::fs::read(dir.join(&w.filename)).unwrap(), content);
    assert!(dir.join("foo-1.0-cp311-cp311-linux_armv6l.whl").exists());
    assert_eq!(r.builds(), vec![("foo".into(), "1.0".into(), true, 1)]);
    let files: Vec<String> = r
        .tdb
        .admin()
        .query("SELECT filename FROM files ORDER BY filename", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        files,
        vec![
            "foo-1.0-cp311-cp311-linux_armv6l.whl",
            "foo-1.0-cp311-cp311-linux_armv7l.whl"
        ]
    );
    // The log and a full rewrite went to the web output, in that order.
    assert!(matches!(&r.web[0], WebRequest::Log { output, .. } if output.contains("Built!")));
    assert_eq!(r.web[1], WebRequest::Both("foo".into()));
    // Back to work: the next job.
    assert_eq!(r.send(s, &idle()), build("bar", "0.1"));
    // Monitors saw every step but the CONTs.
    assert_eq!(
        r.slave_msgs(),
        vec![
            "HELLO", "ACK", "STATS", "SLEEP", "STATS", "BUILD", "STATS", "STATS", "SEND", "DONE",
            "STATS", "BUILD"
        ]
    );
    assert!(r.stats.iter().any(|s| matches!(s, Stat::Disk(..))));
    assert!(
        r.stats
            .iter()
            .any(|s| matches!(s, Stat::BuildQueue(q) if q.contains(&("cp311".into(), 0))))
    );
}

#[test]
fn a_failed_build_is_logged_and_the_project_page_rewritten() {
    let mut r = Rig::new();
    let s = b"slave-b";
    r.send(s, &hello(300));
    r.queue("cp311", &[("foo", "2.0")]);
    assert_eq!(r.send(s, &idle()), build("foo", "2.0"));
    assert_eq!(r.send(s, &built(false, vec![])), Some(SlaveReply::Done));
    assert_eq!(r.builds(), vec![("foo".into(), "2.0".into(), false, 1)]);
    assert_eq!(r.web[1], WebRequest::Project("foo".into()));
    assert_eq!(r.files.transfers(), 0);
}

#[test]
fn protocol_violations_get_die_and_strangers_silence() {
    let mut r = Rig::new();
    // Unknown identity: anything but HELLO is ignored.
    assert_eq!(r.send(b"stranger", &idle()), None);
    assert_eq!(r.send(b"stranger", &SlaveRequest::Sent), None);
    // Garbage bytes: no reply, nothing breaks.
    assert_eq!(r.send_bytes(b"stranger", b"\xff\x00garbage"), None);
    let s = b"slave-c";
    r.send(s, &hello(300));
    // BUILT and SENT before a BUILD or SEND.
    assert_eq!(r.send(s, &built(false, vec![])), Some(SlaveReply::Die));
    r.send(s, &hello(300));
    assert_eq!(r.send(s, &SlaveRequest::Sent), Some(SlaveReply::Die));
    // Dead: IDLE gets DIE again.
    assert_eq!(r.send(s, &idle()), Some(SlaveReply::Die));
    // IDLE while building.
    r.send(s, &hello(300));
    r.queue("cp311", &[("foo", "1.0")]);
    assert_eq!(r.send(s, &idle()), build("foo", "1.0"));
    assert_eq!(r.send(s, &idle()), Some(SlaveReply::Die));
    assert!(r.builds().is_empty());
}

#[test]
fn kill_skip_sleep_and_wake() {
    let mut r = Rig::new();
    let (a, b) = (b"slave-1", b"slave-2");
    r.send(a, &hello(300));
    r.send(b, &hello(300));
    r.queue("cp311", &[("foo", "1.0"), ("foo", "2.0"), ("bar", "0.1")]);
    assert_eq!(r.send(a, &idle()), build("foo", "1.0"));
    // SKIP slave 1: its next BUSY gets DONE and the build is abandoned.
    assert_eq!(r.driver.control(SlaveControl::Skip, Some(1)), 1);
    assert_eq!(r.send(a, &busy()), Some(SlaveReply::Done));
    // SLEEP slave 2 only: it sleeps, slave 1 still gets work.
    assert_eq!(r.driver.control(SlaveControl::Sleep, Some(2)), 1);
    assert_eq!(r.send(b, &idle()), Some(SlaveReply::Sleep { paused: true }));
    assert_eq!(r.send(a, &idle()), build("foo", "2.0"));
    // A SKIP that arrives after the build finished discards the result.
    r.driver.control(SlaveControl::Skip, None);
    let w = wheel("foo-2.0-py3-none-any.whl", b"x");
    assert_eq!(r.send(a, &built(true, vec![w])), Some(SlaveReply::Done));
    assert!(r.builds().is_empty());
    // KILL everyone: the next IDLE gets DIE.
    assert_eq!(r.driver.control(SlaveControl::Kill, None), 2);
    assert_eq!(r.send(a, &idle()), Some(SlaveReply::Die));
    // WAKE clears every flag.
    r.driver.control(SlaveControl::Wake, Some(2));
    assert_eq!(r.send(b, &idle()), build("bar", "0.1"));
    // An unknown id reaches nobody.
    assert_eq!(r.driver.control(SlaveControl::Kill, Some(99)), 0);
    // The master paused: SLEEP true.
    r.driver.set_paused(true);
    r.send(b"slave-3", &hello(300));
    assert_eq!(
        r.send(b"slave-3", &idle()),
        Some(SlaveReply::Sleep { paused: true })
    );
}

#[test]
fn a_lying_slave_is_told_to_die_and_no_file_lands() {
    let mut r = Rig::new();
    let s = b"liar";
    r.send(s, &hello(300));
    r.queue("cp311", &[("foo", "1.0")]);
    r.send(s, &idle());
    let mut w = wheel("foo-1.0-py3-none-any.whl", b"the real bytes");
    w.filehash = "f".repeat(64);
    let send = Some(SlaveReply::Send {
        filename: w.filename.clone(),
    });
    assert_eq!(r.send(s, &built(true, vec![w])), send);
    for attempt in 1..=3 {
        r.transfer(b"liar-file", 1, b"the real bytes");
        let reply = r.send(s, &SlaveRequest::Sent);
        if attempt < 3 {
            assert_eq!(reply, send, "attempt {attempt}: asked again");
        } else {
            assert_eq!(reply, Some(SlaveReply::Die));
        }
    }
    assert!(!r.out.path().join("simple/foo").exists());
    assert!(r.builds().is_empty());
    assert_eq!(r.files.transfers(), 0);
}

#[test]
fn a_hostile_file_name_gets_die_before_anything_is_written() {
    let mut r = Rig::new();
    let s = b"hostile";
    r.send(s, &hello(300));
    r.queue("cp311", &[("foo", "1.0")]);
    r.send(s, &idle());
    let mut w = wheel("foo-1.0-py3-none-any.whl", b"x");
    w.filename = "../../../etc/cron.d/evil-1.0-py3-none-any.whl".into();
    assert_eq!(r.send(s, &built(true, vec![w])), Some(SlaveReply::Die));
    assert_eq!(
        std::fs::read_dir(r.out.path().join("simple"))
            .unwrap()
            .count(),
        0
    );
    assert!(r.builds().is_empty());
}

#[test]
fn silent_slaves_expire_and_their_transfers_are_cleaned_up() {
    let mut r = Rig::new();
    let s = b"vanishing";
    r.send(s, &hello(60));
    r.queue("cp311", &[("foo", "1.0")]);
    r.send(s, &idle());
    let content = vec![1u8; 300_000];
    let w = wheel("foo-1.0-py3-none-any.whl", &content);
    r.send(s, &built(true, vec![w]));
    // The transfer starts, then the slave disappears.
    let started = r
        .files
        .on_frames(b"vanishing-file", &[b"HELLO".to_vec(), b"1".to_vec()]);
    assert!(!started.is_empty());
    r.now += Duration::from_secs(59);
    r.expire();
    assert_eq!(r.driver.slaves().count(), 1, "not yet");
    r.now += Duration::from_secs(2);
    r.expire();
    assert_eq!(r.driver.slaves().count(), 0);
    assert_eq!(r.files.transfers(), 0);
    let temps = std::fs::read_dir(r.out.path().join("simple"))
        .unwrap()
        .count();
    assert_eq!(temps, 0, "temp file removed");
    assert_eq!(r.slave_msgs().last().map(String::as_str), Some("DIE"));
    // Its job stays excluded for the build timeout, then comes back.
    r.queue("cp311", &[("foo", "1.0")]);
    r.send(b"other", &hello(300));
    assert_eq!(
        r.send(b"other", &idle()),
        Some(SlaveReply::Sleep { paused: false })
    );
    r.now += Duration::from_secs(3 * 3600);
    r.queue("cp311", &[("foo", "1.0")]);
    assert_eq!(r.send(b"other", &idle()), build("foo", "1.0"));
}

#[test]
fn removals_skip_running_builds_and_purge_queues() {
    let mut r = Rig::new();
    let s = b"slave-d";
    r.send(s, &hello(300));
    r.queue("cp311", &[("foo", "1.0"), ("foo", "2.0"), ("bar", "0.1")]);
    assert_eq!(r.send(s, &idle()), build("foo", "1.0"));
    r.driver.skip_package("foo");
    assert_eq!(r.send(s, &busy()), Some(SlaveReply::Done));
    // foo 2.0 was purged from the queue.
    assert_eq!(r.send(s, &idle()), build("bar", "0.1"));
    r.driver.skip_version("bar", "0.1");
    assert_eq!(r.send(s, &busy()), Some(SlaveReply::Done));
}

#[test]
fn builds_wait_for_the_database_and_are_not_lost() {
    let mut r = Rig::new();
    let s = b"slave-e";
    r.send(s, &hello(300));
    r.queue("cp311", &[("foo", "1.0")]);
    r.send(s, &idle());
    // The database goes away just before the build is recorded.
    r.tdb
        .admin()
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
            &[&r.tdb.username()],
        )
        .unwrap();
    assert_eq!(r.send(s, &built(false, vec![])), Some(SlaveReply::Done));
    // The lost insert may be reported or quietly redone on a fresh
    // connection; either way exactly one build row results.
    if r.driver.unlogged() == 1 {
        r.expire(); // the sweep retries
    }
    assert_eq!(r.driver.unlogged(), 0);
    assert_eq!(r.builds().len(), 1);
}

#[test]
fn a_monitor_hello_replays_every_slave() {
    let mut r = Rig::new();
    r.send(b"s1", &hello(300));
    r.send(b"s2", &hello(300));
    r.send(b"s2", &idle());
    r.status.clear();
    r.driver.replay(&mut r.status);
    let got: Vec<(u64, String)> = r
        .status
        .iter()
        .filter_map(|m| match m {
            StatusMessage::Slave(s) => Some((s.slave_id, s.msg.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "HELLO".into()),
            (1, "ACK".into()),
            (2, "HELLO".into()),
            (2, "STATS".into()),
            (2, "SLEEP".into()),
        ]
    );
}

#[test]
fn bye_forgets_the_slave() {
    let mut r = Rig::new();
    r.send(b"s1", &hello(300));
    assert_eq!(r.send(b"s1", &SlaveRequest::Bye), None);
    assert_eq!(r.driver.slaves().count(), 0);
    assert_eq!(r.slave_msgs().last().map(String::as_str), Some("DIE"));
    // It is a stranger now.
    assert_eq!(r.send(b"s1", &idle()), None);
    // A new HELLO gets a new id.
    assert_eq!(r.send(b"s1", &hello(300)), ack(2));
}

#[test]
fn a_hello_flood_from_many_sockets_is_capped() {
    let mut r = Rig::new();
    for i in 0..MAX_SLAVES {
        let id = format!("peer-{i}");
        assert!(matches!(
            r.send(id.as_bytes(), &hello(300)),
            Some(SlaveReply::Ack { .. })
        ));
    }
    assert_eq!(r.driver.slaves().count(), MAX_SLAVES);
    // One more new socket: ignored, and the map does not grow.
    assert_eq!(r.send(b"one-too-many", &hello(300)), None);
    assert_eq!(r.driver.slaves().count(), MAX_SLAVES);
    // Known slaves are still served; one leaving makes room.
    assert!(matches!(
        r.send(b"peer-0", &idle()),
        Some(SlaveReply::Sleep { .. })
    ));
    assert_eq!(r.send(b"peer-1", &SlaveRequest::Bye), None);
    assert!(matches!(
        r.send(b"one-too-many", &hello(300)),
        Some(SlaveReply::Ack { .. })
    ));
}
