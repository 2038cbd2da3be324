//! Shared helpers for integration tests: a running `piw-master` in a
//! temporary directory, with readiness taken from its systemd notifications
//! (no sleeps), and ZeroMQ peers that connect to it on loopback.

#![allow(dead_code)]

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "piw-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `piw-master` child process with every queue under its own directory,
/// on its own fresh database.
pub struct MasterProcess {
    pub child: Child,
    pub dir: TempDir,
    pub db: piwheels::testing::TestDb,
    notify: UnixDatagram,
    pub slave_port: u16,
    pub file_port: u16,
    pub stderr_path: PathBuf,
}

impl MasterProcess {
    /// The arguments that put every socket and the output under `dir`.
    pub fn args(dir: &Path, slave_port: u16, file_port: u16) -> Vec<String> {
        let ipc = |n: &str| format!("ipc://{}", dir.join(n).display());
        vec![
            "-v".into(),
            "--output-path".into(),
            dir.join("www").display().to_string(),
            "--status-queue".into(),
            ipc("status"),
            "--control-queue".into(),
            ipc("control"),
            "--import-queue".into(),
            ipc("import"),
            "--log-queue".into(),
            ipc("logger"),
            "--slave-queue".into(),
            format!("tcp://127.0.0.1:{slave_port}"),
            "--file-queue".into(),
            format!("tcp://127.0.0.1:{file_port}"),
        ]
    }

    /// Starts the master with the standard test arguments plus `extra`, and
    /// waits (up to 30 s) for it to say READY=1.
    pub fn start(extra: &[&str]) -> MasterProcess {
        Self::start_on(piwheels::testing::TestDb::new(), extra)
    }

    /// [`MasterProcess::start`] on a database the test prepared.
    /// A master in dev mode (pages 3 s after a request) with PyPI out of
    /// reach, and pip's index at `simple` if given.
    pub fn start_offline(db: piwheels::testing::TestDb, simple: Option<&str>) -> MasterProcess {
        let mut args = vec![
            "--dev-mode",
            "--pypi-xmlrpc",
            "http://127.0.0.1:9/pypi",
            "--pypi-json",
            "http://127.0.0.1:9/pypi",
        ];
        if let Some(url) = simple {
            args.extend(["--pypi-simple", url]);
        }
        Self::start_on(db, &args)
    }

    pub fn start_on(db: piwheels::testing::TestDb, extra: &[&str]) -> MasterProcess {
        let mut p = Self::spawn_on(db, extra);
        p.wait_notify("READY=1", Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}; stderr:\n{}", p.stderr()));
        p
    }

    /// Starts the master without waiting for readiness.
    pub fn spawn(extra: &[&str]) -> MasterProcess {
        Self::spawn_on(piwheels::testing::TestDb::new(), extra)
    }

    /// Starts the master on `db` without waiting for readiness.
    pub fn spawn_on(db: piwheels::testing::TestDb, extra: &[&str]) -> MasterProcess {
        let dir = TempDir::new("master");
        std::fs::create_dir_all(dir.path().join("www")).unwrap();
        let (slave_port, file_port) = (free_port(), free_port());
        let notify_path = dir.path().join("notify");
        let notify = UnixDatagram::bind(&notify_path).unwrap();
        let stderr_path = dir.path().join("stderr.log");
        let mut args = Self::args(dir.path(), slave_port, file_port);
        args.push("--dsn".into());
        args.push(db.user_dsn().to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(env!("CARGO_BIN_EXE_piw-master"))
            .args(&args)
            .env("PIWHEELS_ALLOW_ROOT", "1")
            .env("NOTIFY_SOCKET", &notify_path)
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        MasterProcess {
            child,
            dir,
            db,
            notify,
            slave_port,
            file_port,
            stderr_path,
        }
    }

    /// Waits for a systemd notification containing `want`.
    pub fn wait_notify(&mut self, want: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("no {want} from the master within {timeout:?}"));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("master exited ({status}) before {want}"));
            }
            self.notify
                .set_read_timeout(Some(left.min(Duration::from_millis(200))))
                .unwrap();
            if let Ok(n) = self.notify.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]);
                if msg.lines().any(|l| l == want) {
                    return Ok(());
                }
            }
        }
    }

    pub fn ipc(&self, name: &str) -> String {
        format!("ipc://{}", self.dir.path().join(name).display())
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "master did not exit within {timeout:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }
}

impl Drop for MasterProcess {
    fn drop(&mut self) {
        // Stop the process before its database is dropped.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A monitor: SUB on the status queue and PUSH on the control queue.
pub struct Monitor {
    pub ctx: zmq::Context,
    pub status: zmq::Socket,
    pub control: zmq::Socket,
}

impl Monitor {
    pub fn connect(master: &MasterProcess) -> Monitor {
        let ctx = zmq::Context::new();
        let status = ctx.socket(zmq::SUB).unwrap();
        status.set_subscribe(b"").unwrap();
        status.connect(&master.ipc("status")).unwrap();
        let control = ctx.socket(zmq::PUSH).unwrap();
        control.set_linger(1000).unwrap();
        control.connect(&master.ipc("control")).unwrap();
        Monitor {
            ctx,
            status,
            control,
        }
    }

    pub fn send(&self, bytes: &[u8]) {
        self.control.send(bytes, 0).unwrap();
    }

    /// Receives one status frame, waiting at most `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        let mut items = [self.status.as_poll_item(zmq::POLLIN)];
        zmq::poll(&mut items, timeout.as_millis() as i64).unwrap();
        if items[0].is_readable() {
            Some(self.status.recv_bytes(0).unwrap())
        } else {
            None
        }
    }

    /// Sends `request` until a status frame satisfying `want` arrives
    /// (PUB/SUB drops messages sent before the subscription is in place, so
    /// the first HELLO may go unanswered). Gives up after `timeout`.
    pub fn request_until(
        &self,
        request: &[u8],
        timeout: Duration,
        mut want: impl FnMut(&[u8]) -> bool,
    ) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.send(request);
            let round = Instant::now() + Duration::from_millis(250);
            while let Some(frame) = self.recv(round.saturating_duration_since(Instant::now())) {
                if want(&frame) {
                    return Some(frame);
                }
            }
        }
        None
    }
}

/// Decodes a hex string from the wire vectors.
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A simulated build slave speaking piwheels' protocol byte for byte over
/// real sockets: REQ on the slave queue, a fresh DEALER per file transfer.
pub struct SimSlave {
    pub ctx: zmq::Context,
    pub req: zmq::Socket,
    pub slave_port: u16,
    pub file_port: u16,
}

impl SimSlave {
    pub fn connect(master: &MasterProcess) -> SimSlave {
        let ctx = zmq::Context::new();
        let req = ctx.socket(zmq::REQ).unwrap();
        req.set_linger(0).unwrap();
        req.set_rcvtimeo(20_000).unwrap();
        req.connect(&format!("tcp://127.0.0.1:{}", master.slave_port))
            .unwrap();
        SimSlave {
            ctx,
            req,
            slave_port: master.slave_port,
            file_port: master.file_port,
        }
    }

    /// Sends a request and waits (up to 20 s) for the reply bytes.
    pub fn request_bytes(&self, payload: &[u8]) -> Vec<u8> {
        self.req.send(payload, 0).unwrap();
        self.req
            .recv_bytes(0)
            .unwrap_or_else(|e| panic!("no reply from the master: {e}"))
    }

    /// Sends a request and decodes the reply.
    pub fn request(
        &self,
        req: &piwheels::protocol::SlaveRequest,
    ) -> piwheels::protocol::SlaveReply {
        use piwheels::protocol::WireMessage;
        piwheels::protocol::SlaveReply::decode(&self.request_bytes(&req.encode())).unwrap()
    }

    /// Sends IDLE until the reply is not SLEEP (the master's queue may not be
    /// ready yet), up to `timeout`.
    pub fn idle_until_work(
        &self,
        stats: &piwheels::protocol::SlaveStats,
        timeout: Duration,
    ) -> piwheels::protocol::SlaveReply {
        use piwheels::protocol::{SlaveReply, SlaveRequest};
        let deadline = Instant::now() + timeout;
        loop {
            let reply = self.request(&SlaveRequest::Idle(stats.clone()));
            match reply {
                SlaveReply::Sleep { .. } if Instant::now() < deadline => {
                    // What a real slave does between IDLEs, shortened.
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }

    /// Opens a transfer as a slave does: a fresh DEALER to the file queue
    /// (10 s receive timeout), then HELLO <id>.
    pub fn open_transfer(&self, slave_id: u64) -> zmq::Socket {
        let dealer = self.ctx.socket(zmq::DEALER).unwrap();
        dealer.set_linger(0).unwrap();
        dealer.set_rcvtimeo(10_000).unwrap();
        dealer
            .connect(&format!("tcp://127.0.0.1:{}", self.file_port))
            .unwrap();
        dealer
            .send_multipart([&b"HELLO"[..], slave_id.to_string().as_bytes()], 0)
            .unwrap();
        dealer
    }

    /// Plays the file-transfer peer: a fresh DEALER, HELLO <id>, a CHUNK for
    /// every FETCH (`corrupt` may change the bytes), until DONE.
    pub fn send_file(&self, slave_id: u64, content: &[u8], corrupt: impl Fn(u64, &mut Vec<u8>)) {
        let dealer = self.open_transfer(slave_id);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut items = [dealer.as_poll_item(zmq::POLLIN)];
            zmq::poll(&mut items, 5000).unwrap();
            assert!(Instant::now() < deadline, "transfer took too long");
            if !items[0].is_readable() {
                // The slave's nudge after 5 s of silence.
                dealer
                    .send_multipart([&b"HELLO"[..], slave_id.to_string().as_bytes()], 0)
                    .unwrap();
                continue;
            }
            let frames = dealer.recv_multipart(0).unwrap();
            match frames[0].as_slice() {
                b"FETCH" => {
                    let offset: u64 = std::str::from_utf8(&frames[1]).unwrap().parse().unwrap();
                    let len: u64 = std::str::from_utf8(&frames[2]).unwrap().parse().unwrap();
                    let end = (offset + len).min(content.len() as u64);
                    let mut data = content[offset as usize..end as usize].to_vec();
                    corrupt(offset, &mut data);
                    dealer
                        .send_multipart([&b"CHUNK"[..], &frames[1], &data], 0)
                        .unwrap();
                }
                b"DONE" => return,
                other => panic!("unexpected {:?}", String::from_utf8_lossy(other)),
            }
        }
    }
}

/// Unfinished transfers' temp files under `<www>/simple`.
pub fn transfer_temps(simple: &Path) -> usize {
    std::fs::read_dir(simple)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(".piw-incoming-")
                })
                .count()
        })
        .unwrap_or(0)
}
