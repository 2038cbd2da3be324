//! The real `piw-slave` binary against a stand-in master made of real
//! ZeroMQ sockets (a ROUTER for the slave queue, a ROUTER for files)
//! speaking piwheels 0.23's protocol byte for byte, with real pip building
//! a generated sdist from a local index. Nothing here sleeps to
//! synchronise: every wait is a poll with a deadline.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;
use piwheels::protocol::file::CHUNK_SIZE;
use piwheels::protocol::{BuildResult, SlaveReply, SlaveRequest, WireMessage};
use piwheels::testing_sdist::{SdistSpec, SimpleIndex};
use sha2::{Digest, Sha256};

const T: Duration = Duration::from_secs(60);

/// The master's two sockets.
struct FakeMaster {
    _ctx: zmq::Context,
    slave: zmq::Socket,
    file: zmq::Socket,
    slave_port: u16,
    file_port: u16,
}

fn bind_router(ctx: &zmq::Context) -> (zmq::Socket, u16) {
    let s = ctx.socket(zmq::ROUTER).unwrap();
    s.set_linger(0).unwrap();
    s.bind("tcp://127.0.0.1:*").unwrap();
    let ep = s.get_last_endpoint().unwrap().unwrap();
    let port = ep.rsplit(':').next().unwrap().parse().unwrap();
    (s, port)
}

fn recv_within(s: &zmq::Socket, timeout: Duration) -> Option<Vec<Vec<u8>>> {
    let mut items = [s.as_poll_item(zmq::POLLIN)];
    zmq::poll(&mut items, timeout.as_millis() as i64).unwrap();
    items[0].is_readable().then(|| s.recv_multipart(0).unwrap())
}

impl FakeMaster {
    fn new() -> FakeMaster {
        let ctx = zmq::Context::new();
        let (slave, slave_port) = bind_router(&ctx);
        let (file, file_port) = bind_router(&ctx);
        FakeMaster {
            _ctx: ctx,
            slave,
            file,
            slave_port,
            file_port,
        }
    }

    /// The next request: (identity, raw payload, decoded).
    fn recv_raw(&self, timeout: Duration) -> Option<(Vec<u8>, Vec<u8>, SlaveRequest)> {
        let frames = recv_within(&self.slave, timeout)?;
        assert_eq!(frames.len(), 3, "a REQ peer sends [id, empty, payload]");
        assert!(frames[1].is_empty());
        let req = SlaveRequest::decode(&frames[2])
            .unwrap_or_else(|e| panic!("undecodable request {:?}: {e}", frames[2]));
        Some((frames[0].clone(), frames[2].clone(), req))
    }

    fn recv(&self, slave: &mut SlaveProcess) -> (Vec<u8>, SlaveRequest) {
        match self.recv_raw(T) {
            Some((id, _, req)) => (id, req),
            None => panic!("no request within {T:?}; stderr:\n{}", slave.stderr()),
        }
    }

    fn reply(&self, id: &[u8], reply: &SlaveReply) {
        self.send_raw(id, &reply.encode());
    }

    fn send_raw(&self, id: &[u8], payload: &[u8]) {
        self.slave.send_multipart([id, b"", payload], 0).unwrap();
    }

    /// HELLO → ACK → IDLE, returning the identity.
    fn accept(&self, slave: &mut SlaveProcess, slave_id: u64, index_url: &str) -> Vec<u8> {
        let (id, req) = self.recv(slave);
        assert!(matches!(req, SlaveRequest::Hello(_)), "{req:?}");
        self.reply(
            &id,
            &SlaveReply::Ack {
                slave_id,
                pypi_url: index_url.into(),
            },
        );
        let (id2, req) = self.recv(slave);
        assert_eq!(id2, id);
        assert!(matches!(req, SlaveRequest::Idle(_)), "{req:?}");
        id
    }

    /// Answers BUSY with CONT until BUILT arrives.
    fn until_built(&self, slave: &mut SlaveProcess, id: &[u8]) -> (BuildResult, u32) {
        let mut busies = 0;
        loop {
            let (from, req) = self.recv(slave);
            assert_eq!(from, id);
            match req {
                SlaveRequest::Busy(stats) => {
                    assert!(stats.disk_size > 0 && stats.mem_size > 0);
                    busies += 1;
                    self.reply(id, &SlaveReply::Cont);
                }
                SlaveRequest::Built(result) => return (result, busies),
                other => panic!("expected BUSY or BUILT, got {other:?}"),
            }
        }
    }

    /// DIE → BYE, and the process exits 0.
    fn kill(&self, slave: &mut SlaveProcess, id: &[u8]) {
        self.reply(id, &SlaveReply::Die);
        let (from, req) = self.recv(slave);
        assert_eq!(from, id);
        assert_eq!(req, SlaveRequest::Bye);
        let status = slave.wait_exit(T);
        assert!(
            status.success(),
            "exit {status}; stderr:\n{}",
            slave.stderr()
        );
    }
}

struct SlaveProcess {
    child: Child,
    dir: TempDir,
    stderr_path: PathBuf,
}

impl SlaveProcess {
    fn build_dir(&self) -> PathBuf {
        self.dir.path().join("build")
    }

    fn spawn(master: &FakeMaster, extra: &[&str]) -> SlaveProcess {
        Self::spawn_env(master, extra, &[("PIWHEELS_ALLOW_ROOT", "1")])
    }

    fn spawn_env(master: &FakeMaster, extra: &[&str], env: &[(&str, &str)]) -> SlaveProcess {
        let dir = TempDir::new("slave");
        let build = dir.path().join("build");
        std::fs::create_dir_all(&build).unwrap();
        let stderr_path = dir.path().join("stderr.log");
        let mut args: Vec<String> = vec![
            "-v".into(),
            "-m".into(),
            "127.0.0.1".into(),
            "--slave-port".into(),
            master.slave_port.to_string(),
            "--file-port".into(),
            master.file_port.to_string(),
            "-d".into(),
            build.display().to_string(),
            "-L".into(),
            "test-slave".into(),
            "--extra-index-url".into(),
            "".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_piw-slave"));
        cmd.args(&args)
            .env_remove("PIW_MASTER")
            .env_remove("PIW_TIMEOUT")
            .env_remove("PIWHEELS_ALLOW_ROOT")
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        SlaveProcess {
            child: cmd.spawn().unwrap(),
            dir,
            stderr_path,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "piw-slave did not exit within {timeout:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Build directories the slave left behind.
    fn leftovers(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.build_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }
}

impl Drop for SlaveProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Is this process still running (not a zombie)?
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Waits until `path` holds a pid (the test backend writes it when its
/// build starts).
fn wait_pid(path: &Path) -> i32 {
    let deadline = Instant::now() + T;
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "the build never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_dead(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while running(pid) {
        assert!(Instant::now() < deadline, "build process {pid} survived");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn python_version() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print('%d%d' % sys.version_info[:2])"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn system_library() -> Option<PathBuf> {
    [
        "x86_64-linux-gnu",
        "aarch64-linux-gnu",
        "arm-linux-gnueabihf",
    ]
    .iter()
    .map(|t| PathBuf::from(format!("/lib/{t}/libz.so.1")))
    .find(|p| p.exists())
}

/// Plays the file juggler for one file: waits for HELLO, checks the nudge,
/// fetches the file out of order (and one chunk twice), then says DONE.
fn receive_file(
    master: &FakeMaster,
    slave: &mut SlaveProcess,
    slave_id: u64,
    size: u64,
) -> Vec<u8> {
    let hello = |slave: &mut SlaveProcess| -> Vec<u8> {
        let f = recv_within(&master.file, T)
            .unwrap_or_else(|| panic!("no file HELLO; stderr:\n{}", slave.stderr()));
        assert_eq!(
            f[1..],
            [b"HELLO".to_vec(), slave_id.to_string().into_bytes()]
        );
        f[0].clone()
    };
    let id = hello(slave);
    // Say nothing: the slave nudges with HELLO after 5 s.
    let started = Instant::now();
    let id2 = hello(slave);
    assert_eq!(id2, id, "the nudge comes on the same socket");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(4500) && waited < Duration::from_secs(8),
        "nudge after {waited:?}"
    );
    // Fetch in 100-byte pieces, last first, with a zero-padded offset
    // frame that must come back exactly.
    let piece = 100u64;
    let mut offsets: Vec<u64> = (0..size.div_ceil(piece)).map(|i| i * piece).collect();
    offsets.reverse();
    offsets.push(0);
    let mut data = vec![0u8; size as usize];
    for off in offsets {
        let off_frame = format!("{off:08}").into_bytes();
        master
            .file
            .send_multipart(
                [
                    id.clone(),
                    b"FETCH".to_vec(),
                    off_frame.clone(),
                    piece.to_string().into_bytes(),
                ],
                0,
            )
            .unwrap();
        let f = recv_within(&master.file, T).expect("CHUNK");
        assert_eq!(f[0], id);
        assert_eq!(f[1], b"CHUNK");
        assert_eq!(f[2], off_frame);
        let chunk = &f[3];
        assert_eq!(chunk.len() as u64, piece.min(size - off));
        data[off as usize..off as usize + chunk.len()].copy_from_slice(chunk);
    }
    // A FETCH past the end gets an empty chunk; an oversized one is capped.
    master
        .file
        .send_multipart(
            [
                id.clone(),
                b"FETCH".to_vec(),
                b"999999".to_vec(),
                b"10".to_vec(),
            ],
            0,
        )
        .unwrap();
    let f = recv_within(&master.file, T).unwrap();
    assert!(f[3].is_empty());
    master
        .file
        .send_multipart(
            [
                id.clone(),
                b"FETCH".to_vec(),
                b"0".to_vec(),
                (4 * CHUNK_SIZE).to_string().into_bytes(),
            ],
            0,
        )
        .unwrap();
    let f = recv_within(&master.file, T).unwrap();
    assert_eq!(f[3].len() as u64, size.min(CHUNK_SIZE));
    master
        .file
        .send_multipart([id.clone(), b"DONE".to_vec()], 0)
        .unwrap();
    data
}

#[test]
fn builds_a_real_wheel_and_transfers_it() {
    let tmp = TempDir::new("slave-index");
    let index = SimpleIndex::serve(&tmp.path().join("index")).unwrap();
    let mut spec = SdistSpec::new("Tiny.Pkg", "1.0");
    spec.requires_python = Some(">=3.7".into());
    spec.requires_dist = vec![
        "Some_Dep (>=1)".into(),
        "other-dep; python_version >= '3'".into(),
        "pytest; extra == 'test'".into(),
    ];
    let lib = system_library();
    spec.native_lib = lib.clone();
    index.add(&spec, "python3").unwrap();

    let master = FakeMaster::new();
    let mut slave = SlaveProcess::spawn(&master, &["-t", "90m", "--master-timeout", "30s"]);

    // HELLO carries 0.23's ten fields.
    let (id, raw, req) = master.recv_raw(T).expect("HELLO");
    let SlaveRequest::Hello(hello) = req else {
        panic!("{req:?}")
    };
    assert_eq!(SlaveRequest::Hello(hello.clone()).encode(), raw);
    assert_eq!(
        hello.build_timeout.to_std(),
        Some(Duration::from_secs(5400))
    );
    assert_eq!(hello.busy_timeout.to_std(), Some(Duration::from_secs(30)));
    assert_eq!(hello.py_version, python_version());
    assert_eq!(hello.native_abi, format!("cp{}", python_version()));
    assert!(hello.native_platform.starts_with("linux_"));
    assert_eq!(hello.label, "test-slave");
    assert_eq!(hello.os_name, piwheels::info::os_name_version().0);
    master.reply(
        &id,
        &SlaveReply::Ack {
            slave_id: 3,
            pypi_url: index.url(),
        },
    );
    let (_, req) = master.recv(&mut slave);
    let SlaveRequest::Idle(stats) = req else {
        panic!("{req:?}")
    };
    assert!(stats.disk_size >= stats.disk_free && stats.disk_size > 0);
    assert!(stats.mem_size >= stats.mem_free && stats.mem_size > 0);
    assert!((chrono::Utc::now() - stats.timestamp).num_seconds().abs() < 60);

    master.reply(
        &id,
        &SlaveReply::Build {
            package: "Tiny.Pkg".into(),
            version: "1.0".into(),
        },
    );
    // BUSY at once, then CONT until BUILT.
    let (result, busies) = master.until_built(&mut slave, &id);
    assert!(busies >= 1);
    assert!(result.status, "build failed:\n{}", result.output);
    assert!(result.output.contains("Tiny.Pkg"), "{}", result.output);
    assert!(index.requests().contains(&"/simple/tiny-pkg/".to_string()));
    assert_eq!(result.files.len(), 1);
    let f = &result.files[0];
    assert_eq!(f.filename, spec.wheel_filename());
    assert_eq!(
        (
            f.package_tag.as_str(),
            f.package_version_tag.as_str(),
            f.py_version_tag.as_str(),
            f.abi_tag.as_str(),
            f.platform_tag.as_str()
        ),
        ("tiny_pkg", "1.0", "py3", "none", "any")
    );
    assert_eq!(f.requires_python.as_deref(), Some(">=3.7"));
    assert_eq!(f.location, "/simple");
    let keys: Vec<&str> = f.dependencies.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["apt", "pip", ""]);
    assert_eq!(f.dependencies[1].1, ["other-dep", "some-dep"]);
    if lib.is_some() {
        assert!(
            f.dependencies[0].1.contains(&"libc6".to_string()),
            "{:?}",
            f.dependencies
        );
    }
    assert!(f.dependencies[2].1.is_empty(), "{:?}", f.dependencies);

    // SEND → transfer on the file queue → SENT.
    master.reply(
        &id,
        &SlaveReply::Send {
            filename: f.filename.clone(),
        },
    );
    let data = receive_file(&master, &mut slave, 3, f.filesize);
    let (from, req) = master.recv(&mut slave);
    assert_eq!(from, id);
    assert_eq!(req, SlaveRequest::Sent);
    assert_eq!(data.len() as u64, f.filesize);
    assert_eq!(piwheels::wheel::hex(&Sha256::digest(&data)), f.filehash);

    // DONE: the build is removed and the slave is idle again.
    master.reply(&id, &SlaveReply::Done);
    let (_, req) = master.recv(&mut slave);
    assert!(matches!(req, SlaveRequest::Idle(_)), "{req:?}");
    assert!(slave.leftovers().is_empty(), "{:?}", slave.leftovers());
    master.kill(&mut slave, &id);
}

#[test]
fn a_failed_build_is_reported_and_cleaned_up() {
    let tmp = TempDir::new("slave-fail");
    let index = SimpleIndex::serve(&tmp.path().join("index")).unwrap();
    let mut spec = SdistSpec::new("broken", "0.1");
    spec.fail = true;
    index.add(&spec, "python3").unwrap();
    let master = FakeMaster::new();
    let mut slave = SlaveProcess::spawn(&master, &[]);
    let id = master.accept(&mut slave, 1, &index.url());
    master.reply(
        &id,
        &SlaveReply::Build {
            package: "broken".into(),
            version: "0.1".into(),
        },
    );
    let (result, _) = master.until_built(&mut slave, &id);
    assert!(!result.status);
    assert!(result.files.is_empty());
    assert!(
        result.output.contains("fails on purpose"),
        "{}",
        result.output
    );
    master.reply(&id, &SlaveReply::Done);
    let (_, req) = master.recv(&mut slave);
    assert!(matches!(req, SlaveRequest::Idle(_)));
    assert!(slave.leftovers().is_empty());
    master.kill(&mut slave, &id);
}

#[test]
fn the_build_timeout_is_enforced() {
    let tmp = TempDir::new("slave-timeout");
    let index = SimpleIndex::serve(&tmp.path().join("index")).unwrap();
    let mut spec = SdistSpec::new("slowpkg", "1.0");
    spec.delay = Some(Duration::from_secs(600));
    let pid_file = tmp.path().join("backend.pid");
    spec.pid_file = Some(pid_file.clone());
    index.add(&spec, "python3").unwrap();
    let master = FakeMaster::new();
    // Long enough for pip to reach the backend even on a loaded machine.
    let mut slave = SlaveProcess::spawn(&master, &["-t", "10s"]);
    let id = master.accept(&mut slave, 1, &index.url());
    let started = Instant::now();
    master.reply(
        &id,
        &SlaveReply::Build {
            package: "slowpkg".into(),
            version: "1.0".into(),
        },
    );
    let (result, busies) = master.until_built(&mut slave, &id);
    let took = started.elapsed();
    assert!(busies >= 1);
    assert!(!result.status);
    assert!(result.files.is_empty());
    assert!(
        result.output.contains("build timed out") && result.output.contains("(10s)"),
        "{}",
        result.output
    );
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(40),
        "{took:?}"
    );
    let d = result.duration.to_std().unwrap();
    assert!(
        d >= Duration::from_secs(10) && d < Duration::from_secs(25),
        "{d:?}"
    );
    // The backend (pip's grandchild, sleeping for 10 minutes) was killed
    // with pip.
    let pid = wait_pid(&pid_file);
    wait_dead(pid);
    master.reply(&id, &SlaveReply::Done);
    let (_, req) = master.recv(&mut slave);
    assert!(matches!(req, SlaveRequest::Idle(_)));
    master.kill(&mut slave, &id);
}

#[test]
fn done_while_building_abandons_the_build() {
    let tmp = TempDir::new("slave-abandon");
    let index = SimpleIndex::serve(&tmp.path().join("index")).unwrap();
    let mut spec = SdistSpec::new("slowpkg", "2.0");
    spec.delay = Some(Duration::from_secs(600));
    let pid_file = tmp.path().join("backend.pid");
    spec.pid_file = Some(pid_file.clone());
    index.add(&spec, "python3").unwrap();
    let master = FakeMaster::new();
    let mut slave = SlaveProcess::spawn(&master, &[]);
    let id = master.accept(&mut slave, 1, &index.url());
    master.reply(
        &id,
        &SlaveReply::Build {
            package: "slowpkg".into(),
            version: "2.0".into(),
        },
    );
    let (_, req) = master.recv(&mut slave);
    assert!(matches!(req, SlaveRequest::Busy(_)));
    let pid = wait_pid(&pid_file);
    // The master skips the build: DONE instead of CONT.
    let asked = Instant::now();
    master.reply(&id, &SlaveReply::Done);
    let (_, req) = master.recv(&mut slave);
    assert!(matches!(req, SlaveRequest::Idle(_)), "{req:?}");
    assert!(asked.elapsed() < Duration::from_secs(15));
    wait_dead(pid);
    assert!(slave.leftovers().is_empty(), "{:?}", slave.leftovers());
    master.kill(&mut slave, &id);
}

#[test]
fn sleep_backs_off_then_idles_again() {
    let master = FakeMaster::new();
    let mut slave = SlaveProcess::spawn(&master, &["--master-timeout", "60s"]);
    let id = master.accept(&mut slave, 1, "http://127.0.0.1:9/simple");
    for paused in [false, true] {
        let t0 = Instant::now();
        master.reply(&id, &SlaveReply::Sleep { paused });
        let (from, req) = master.recv(&mut slave);
        let waited = t0.elapsed();
        assert_eq!(from, id);
        assert!(matches!(req, SlaveRequest::Idle(_)), "{req:?}");
        assert!(
            waited >= Duration::from_millis(4900) && waited <= Duration::from_secs(11),
            "slept {waited:?}"
        );
    }
    assert!(
        slave.stderr().contains("Sleeping: paused"),
        "{}",
        slave.stderr()
    );
    master.kill(&mut slave, &id);
}

#[test]
fn master_silence_resets_the_connection() {
    let master = FakeMaster::new();
    let mut slave = SlaveProcess::spawn(&master, &["--master-timeout", "2s"]);
    let (first, _, req) = master.recv_raw(T).expect("HELLO");
    assert!(
        matches!(req, SlaveRequest::Hello(ref h) if h.busy_timeout.to_std() == Some(Duration::from_secs(2)))
    );
    // Say nothing: a new socket (new identity) says HELLO again.
    let t0 = Instant::now();
    let (second, _, req) = master.recv_raw(T).expect("second HELLO");
    let waited = t0.elapsed();
    assert!(matches!(req, SlaveRequest::Hello(_)), "{req:?}");
    assert_ne!(first, second, "the reconnect uses a new socket");
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    // The late reply to the old socket goes nowhere; the new one works.
    master.reply(
        &first,
        &SlaveReply::Ack {
            slave_id: 1,
            pypi_url: "u".into(),
        },
    );
    master.reply(
        &second,
        &SlaveReply::Ack {
            slave_id: 2,
            pypi_url: "u".into(),
        },
    );
    let (from, req) = master.recv(&mut slave);
    assert_eq!(from, second);
    assert!(matches!(req, SlaveRequest::Idle(_)));
    assert!(slave.stderr().contains("Timed out waiting for master"));
    master.kill(&mut slave, &second);
}

#[test]
fn a_bad_reply_resets_the_connection() {
    let master = FakeMaster::new();
    let mut slave = SlaveProcess::spawn(&master, &[]);
    let (first, _, _) = master.recv_raw(T).expect("HELLO");
    // Not CBOR at all.
    master.send_raw(&first, b"\xff\x00garbage");
    let (second, _, req) = master.recv_raw(T).expect("HELLO after garbage");
    assert!(matches!(req, SlaveRequest::Hello(_)));
    assert_ne!(first, second);
    // A valid message that makes no sense now (CONT before ACK).
    master.reply(&second, &SlaveReply::Cont);
    let (third, _, req) = master.recv_raw(T).expect("HELLO after CONT");
    assert!(matches!(req, SlaveRequest::Hello(_)));
    assert_ne!(second, third);
    // SEND of a file the slave never built.
    let id = {
        master.reply(
            &third,
            &SlaveReply::Ack {
                slave_id: 5,
                pypi_url: "u".into(),
            },
        );
        let (_, req) = master.recv(&mut slave);
        assert!(matches!(req, SlaveRequest::Idle(_)));
        third
    };
    master.reply(
        &id,
        &SlaveReply::Send {
            filename: "../../etc/passwd".into(),
        },
    );
    let (fourth, _, req) = master.recv_raw(T).expect("HELLO after SEND");
    assert!(matches!(req, SlaveRequest::Hello(_)));
    assert!(
        slave.stderr().contains("protocol error"),
        "{}",
        slave.stderr()
    );
    master.reply(
        &fourth,
        &SlaveReply::Ack {
            slave_id: 6,
            pypi_url: "u".into(),
        },
    );
    master.recv(&mut slave);
    master.kill(&mut slave, &fourth);
}

#[test]
fn sigterm_says_bye_and_exits_zero() {
    let master = FakeMaster::new();
    let mut slave = SlaveProcess::spawn(&master, &["--master-timeout", "60s"]);
    let id = master.accept(&mut slave, 1, "u");
    master.reply(&id, &SlaveReply::Sleep { paused: false });
    slave.signal(libc::SIGTERM);
    let (from, req) = master.recv(&mut slave);
    assert_eq!(from, id);
    assert_eq!(req, SlaveRequest::Bye);
    let status = slave.wait_exit(T);
    assert!(status.success(), "{status}");
}

#[test]
fn sigterm_while_building_kills_the_build() {
    let tmp = TempDir::new("slave-term");
    let index = SimpleIndex::serve(&tmp.path().join("index")).unwrap();
    let mut spec = SdistSpec::new("slowpkg", "3.0");
    spec.delay = Some(Duration::from_secs(600));
    let pid_file = tmp.path().join("backend.pid");
    spec.pid_file = Some(pid_file.clone());
    index.add(&spec, "python3").unwrap();
    let master = FakeMaster::new();
    let mut slave = SlaveProcess::spawn(&master, &[]);
    let id = master.accept(&mut slave, 1, &index.url());
    master.reply(
        &id,
        &SlaveReply::Build {
            package: "slowpkg".into(),
            version: "3.0".into(),
        },
    );
    master.recv(&mut slave); // BUSY
    let pid = wait_pid(&pid_file);
    slave.signal(libc::SIGTERM);
    let (_, req) = master.recv(&mut slave);
    assert_eq!(req, SlaveRequest::Bye);
    let status = slave.wait_exit(T);
    assert!(status.success(), "{status}; {}", slave.stderr());
    wait_dead(pid);
    assert!(slave.leftovers().is_empty(), "{:?}", slave.leftovers());
}

#[test]
fn refuses_root_without_the_override() {
    if !piwheels::running_as_root() {
        eprintln!("not root; skipped");
        return;
    }
    let master = FakeMaster::new();
    let mut slave = SlaveProcess::spawn_env(&master, &[], &[]);
    let status = slave.wait_exit(T);
    assert_eq!(status.code(), Some(1));
    assert!(
        slave.stderr().contains("must not be run as root"),
        "{}",
        slave.stderr()
    );
    assert!(master.recv_raw(Duration::from_millis(200)).is_none());
}

#[test]
fn bad_options_exit_2() {
    let master = FakeMaster::new();
    for args in [&["-t", "soon"][..], &["--slave-port", "x"], &["--bogus"]] {
        let mut slave = SlaveProcess::spawn(&master, args);
        let status = slave.wait_exit(T);
        assert_eq!(status.code(), Some(2), "{args:?}: {}", slave.stderr());
    }
    let out = Command::new(env!("CARGO_BIN_EXE_piw-slave"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("-m HOST, --master HOST"));
}

#[test]
fn a_missing_interpreter_is_fatal_at_start() {
    let master = FakeMaster::new();
    let mut slave = SlaveProcess::spawn(&master, &["--python", "/nonexistent/python3"]);
    let status = slave.wait_exit(T);
    assert_eq!(status.code(), Some(1));
    assert!(
        slave.stderr().contains("/nonexistent/python3"),
        "{}",
        slave.stderr()
    );
}
