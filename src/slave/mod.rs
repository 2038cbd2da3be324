//! `piw-slave`: builds wheels for a piwheels master.
//!
//! The slave is one thread around one `zmq::poll`, like the master. The
//! protocol lives in [`machine`], a sans-IO state machine; this module is
//! the shell that gives it events (replies from the REQ socket, the end of
//! a build, the end of a file transfer, SIGTERM, the clock) and carries out
//! the actions it returns. The slow work happens elsewhere:
//! - a build runs in a worker thread ([`builder`]), which runs pip in its
//!   own process group ([`process`]) and then examines the wheels
//!   ([`crate::wheel`], [`deps`]); it rings a doorbell the poll loop
//!   watches when it is done;
//! - a file transfer runs on its own DEALER socket in the same poll, driven
//!   by the sans-IO [`transfer`] machine;
//! - [`host`] supplies the interpreter's tags and the machine's statistics.
//!
//! Invariants:
//! - the loop blocks only in `zmq::poll`, whose timeout is the earliest
//!   deadline of the two machines;
//! - a request goes out only when the machine says so, so the REQ socket's
//!   send/receive alternation is never broken; the one exception, BYE on
//!   the way out, is allowed by `ZMQ_REQ_RELAXED` (which changes nothing on
//!   the wire);
//! - nothing the master sends can crash the slave: bad replies reset the
//!   connection, bad file-queue frames are ignored.

pub mod builder;
pub mod deps;
pub mod host;
pub mod machine;
pub mod process;
pub mod transfer;

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::slave::SlaveConfig;
use crate::protocol::{SlaveHello, SlaveReply, SlaveRequest, WireMessage};
use crate::signals::{Signal, SignalFd};
use crate::systemd::Notifier;
use builder::{BuildJob, BuildSpec};
use machine::{Action, Event, Machine, Request, Timeouts};
use transfer::{Step, Transfer};

/// The longest a reply from the master may be (the largest, ACK, is a few
/// dozen bytes; this only stops a hostile peer making us buffer a lot).
const MAX_REPLY: i64 = 1 << 20;
/// The same for file-queue frames (FETCH and DONE are tiny).
const MAX_FILE_FRAME: i64 = 64 << 10;
/// At most this many file-queue messages are handled per loop turn.
const BATCH: usize = 100;
/// The longest `zmq::poll` sleeps with nothing due.
const MAX_POLL: Duration = Duration::from_secs(60);

/// The piwheels epoch: a clock before this is wrong (0.23's check).
pub fn clock_is_sane(now: chrono::DateTime<chrono::Utc>) -> bool {
    now >= chrono::DateTime::from_timestamp(1_590_969_600, 0).unwrap_or_default()
}

/// A transfer in progress: its machine, socket and file.
struct ActiveTransfer {
    machine: Transfer,
    socket: zmq::Socket,
    file: File,
    filename: String,
}

/// The running slave.
pub struct Slave {
    config: SlaveConfig,
    hello: SlaveHello,
    machine: Machine,
    ctx: zmq::Context,
    queue: Option<zmq::Socket>,
    signals: SignalFd,
    notifier: Notifier,
    job: Option<BuildJob>,
    /// The finished build's directory, until the master is done with it.
    build_dir: Option<PathBuf>,
    transfer: Option<ActiveTransfer>,
    events: VecDeque<Event>,
    ready_sent: bool,
    next_watchdog: Option<Instant>,
}

impl Slave {
    /// Asks the interpreter for its tags and prepares everything; `signals`
    /// must exist before any thread starts (libzmq's included).
    pub fn new(
        config: SlaveConfig,
        signals: SignalFd,
        notifier: Notifier,
    ) -> Result<Slave, String> {
        let tags = host::python_tags(&config.python)?;
        if !tags.has_pip {
            return Err(format!(
                "{} cannot run pip (no module named pip); install it, or choose another \
                 interpreter with --python",
                config.python
            ));
        }
        match std::fs::metadata(&config.dir) {
            Ok(m) if m.is_dir() => {}
            _ => {
                return Err(format!("--dir {} is not a directory", config.dir.display()));
            }
        }
        log::info!(
            target: "slave",
            "{} reports python {} ABI {} platform {}",
            config.python,
            tags.py_version,
            tags.abi,
            tags.platform
        );
        let hello = host::hello(
            &tags,
            config.build_timeout,
            config.master_timeout,
            &config.label,
        );
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id());
        let machine = Machine::new(Timeouts::with_master_timeout(config.master_timeout), seed);
        let next_watchdog = notifier.watchdog_interval().map(|i| Instant::now() + i);
        Ok(Slave {
            config,
            hello,
            machine,
            ctx: zmq::Context::new(),
            queue: None,
            signals,
            notifier,
            job: None,
            build_dir: None,
            transfer: None,
            events: VecDeque::new(),
            ready_sent: false,
            next_watchdog,
        })
    }

    /// The HELLO this slave sends.
    pub fn hello(&self) -> &SlaveHello {
        &self.hello
    }

    /// Talks to the master until DIE, a signal or a fatal error; returns
    /// the exit status.
    pub fn run(mut self) -> i32 {
        self.events.push_back(Event::Start);
        let code = loop {
            if let Err(e) = self.process_events() {
                log::error!(target: self.machine.log_target(), "{e}");
                break 1;
            }
            if let Some(code) = self.machine.exit_status() {
                break code;
            }
            if let Err(e) = self.poll_once() {
                log::error!(target: self.machine.log_target(), "{e}");
                break 1;
            }
        };
        self.shutdown(code)
    }

    fn target(&self) -> String {
        self.machine.log_target().to_string()
    }

    /// Feeds queued events to the machine and carries out its actions
    /// (which may queue more events).
    fn process_events(&mut self) -> Result<(), String> {
        while let Some(event) = self.events.pop_front() {
            let actions = self.machine.handle(event, Instant::now());
            self.execute(actions)?;
        }
        Ok(())
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.machine.next_deadline(),
            self.transfer
                .as_ref()
                .and_then(|t| t.machine.next_deadline()),
            self.next_watchdog,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn poll_once(&mut self) -> Result<(), String> {
        let now = Instant::now();
        let wait = self
            .next_deadline()
            .map_or(MAX_POLL, |d| d.saturating_duration_since(now))
            .min(MAX_POLL);
        // Round up so a wake-up is never a hair early.
        let mut timeout = wait.as_millis() as i64;
        if Duration::from_millis(timeout as u64) < wait {
            timeout += 1;
        }
        let (sig, queue_in, file_in, build_in) = {
            let mut items = vec![zmq::PollItem::from_fd(self.signals.raw_fd(), zmq::POLLIN)];
            let q = self.queue.as_ref().map(|q| {
                items.push(q.as_poll_item(zmq::POLLIN));
                items.len() - 1
            });
            let f = self.transfer.as_ref().map(|t| {
                items.push(t.socket.as_poll_item(zmq::POLLIN));
                items.len() - 1
            });
            let b = self.job.as_ref().map(|j| {
                items.push(zmq::PollItem::from_fd(j.fd(), zmq::POLLIN));
                items.len() - 1
            });
            match zmq::poll(&mut items, timeout) {
                Ok(_) | Err(zmq::Error::EINTR) => {}
                Err(e) => return Err(format!("poll failed: {e}")),
            }
            let ready = |i: Option<usize>| i.is_some_and(|i| items[i].is_readable());
            (items[0].is_readable(), ready(q), ready(f), ready(b))
        };
        if sig {
            self.on_signals();
        }
        if queue_in {
            self.on_reply();
        }
        if file_in {
            self.on_file_frames()?;
        }
        if build_in {
            self.on_build_done();
        }
        let now = Instant::now();
        let actions = self.machine.tick(now);
        self.execute(actions)?;
        if let Some(step) = self.transfer.as_mut().and_then(|t| t.machine.tick(now)) {
            self.on_step(step)?;
        }
        if self.next_watchdog.is_some_and(|w| now >= w) {
            self.notifier.watchdog_ping();
            self.next_watchdog = self.notifier.watchdog_interval().map(|i| now + i);
        }
        Ok(())
    }

    fn on_signals(&mut self) {
        loop {
            match self.signals.read() {
                Ok(Some(Signal::Term | Signal::Int)) => self.events.push_back(Event::Terminate),
                Ok(Some(Signal::Hup)) => {
                    log::info!(target: "slave", "SIGHUP received; nothing to reload");
                }
                Ok(None) => return,
                Err(e) => {
                    log::error!(target: "slave", "cannot read signals: {e}");
                    return;
                }
            }
        }
    }

    /// Reads the reply to the outstanding request (a REQ socket holds at
    /// most one).
    fn on_reply(&mut self) {
        let Some(queue) = &self.queue else { return };
        let frames = match queue.recv_multipart(zmq::DONTWAIT) {
            Ok(f) => f,
            Err(zmq::Error::EAGAIN | zmq::Error::EFSM) => return,
            Err(e) => {
                log::error!(target: self.machine.log_target(), "slave queue: {e}");
                return;
            }
        };
        let event = match frames.as_slice() {
            [one] => match SlaveReply::decode(one) {
                Ok(reply) => {
                    log::debug!(target: self.machine.log_target(), "<- {}", reply.name());
                    Event::Reply(reply)
                }
                Err(e) => Event::BadReply(e.to_string()),
            },
            _ => Event::BadReply(format!("a reply of {} frames", frames.len())),
        };
        self.events.push_back(event);
    }

    fn on_file_frames(&mut self) -> Result<(), String> {
        for _ in 0..BATCH {
            let step = {
                let Some(t) = self.transfer.as_mut() else {
                    return Ok(());
                };
                match t.socket.recv_multipart(zmq::DONTWAIT) {
                    Ok(frames) => t.machine.on_frames(&frames, Instant::now()),
                    Err(zmq::Error::EAGAIN) => return Ok(()),
                    Err(e) => Some(Step::Failed(format!("file queue: {e}"))),
                }
            };
            if let Some(step) = step {
                self.on_step(step)?;
            }
        }
        Ok(())
    }

    fn on_build_done(&mut self) {
        // The thread rings as its last act, so joining it does not block.
        let Some(job) = self.job.take() else { return };
        let stopped = job.stopping();
        let (result, dir) = job.join();
        self.build_dir = Some(dir);
        self.events.push_back(if stopped {
            Event::BuildStopped
        } else {
            Event::BuildFinished(result)
        });
    }

    /// Carries out a step of the file transfer.
    fn on_step(&mut self, step: Step) -> Result<(), String> {
        let Some(t) = self.transfer.as_mut() else {
            return Ok(());
        };
        match step {
            Step::Hello(frames) => {
                if let Err(e) = t.socket.send_multipart(frames, zmq::DONTWAIT) {
                    log::debug!(target: "slave", "file queue HELLO not sent: {e}");
                }
            }
            Step::Chunk {
                offset_frame,
                offset,
                length,
            } => {
                let mut data = vec![0u8; length as usize];
                let mut got = 0;
                while got < data.len() {
                    match t.file.read_at(&mut data[got..], offset + got as u64) {
                        Ok(0) => break,
                        Ok(n) => got += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let why = format!("cannot read {}: {e}", t.filename);
                            return self.on_step(Step::Failed(why));
                        }
                    }
                }
                data.truncate(got);
                let frames = [b"CHUNK".to_vec(), offset_frame, data];
                if let Err(e) = t.socket.send_multipart(frames, zmq::DONTWAIT) {
                    // The master asks again for what it does not get.
                    log::debug!(target: "slave", "file queue CHUNK not sent: {e}");
                }
            }
            Step::Done => {
                log::info!(target: self.machine.log_target(), "Sent {}", t.filename);
                self.transfer = None;
                self.events.push_back(Event::TransferDone);
            }
            Step::Failed(why) => {
                self.transfer = None;
                self.events.push_back(Event::TransferFailed(why));
            }
        }
        Ok(())
    }

    fn execute(&mut self, actions: Vec<Action>) -> Result<(), String> {
        for action in actions {
            match action {
                Action::Connect => self.connect()?,
                Action::Send(req) => self.send(req),
                Action::StartBuild {
                    package,
                    version,
                    index_url,
                } => self.start_build(package, version, index_url),
                Action::StopBuild => {
                    if let Some(job) = &self.job {
                        job.stop();
                    }
                }
                Action::DiscardBuild => self.discard_build(),
                Action::StartTransfer { filename } => self.start_transfer(filename)?,
                Action::AbortTransfer => self.transfer = None,
                Action::Exit(_) => {}
            }
        }
        Ok(())
    }

    fn connect(&mut self) -> Result<(), String> {
        if let Some(old) = self.queue.take() {
            // Whatever the old socket still queues is stale.
            let _ = old.set_linger(0);
        }
        let addr = self.config.slave_queue();
        let socket = (|| -> zmq::Result<zmq::Socket> {
            let s = self.ctx.socket(zmq::REQ)?;
            s.set_ipv6(true)?;
            s.set_sndhwm(10)?;
            s.set_rcvhwm(10)?;
            s.set_linger(1000)?;
            s.set_req_relaxed(true)?;
            s.set_maxmsgsize(MAX_REPLY)?;
            s.connect(&addr)?;
            Ok(s)
        })()
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        log::info!(target: "slave", "Connecting to master on {addr}");
        self.queue = Some(socket);
        if !self.ready_sent {
            self.notifier.ready();
            self.ready_sent = true;
        }
        Ok(())
    }

    fn send(&mut self, req: Request) {
        let msg = match req {
            Request::Hello => SlaveRequest::Hello(self.hello.clone()),
            Request::Idle => SlaveRequest::Idle(host::stats(&self.config.dir)),
            Request::Busy => SlaveRequest::Busy(host::stats(&self.config.dir)),
            Request::Built(result) => SlaveRequest::Built(result),
            Request::Sent => SlaveRequest::Sent,
            Request::Bye => SlaveRequest::Bye,
        };
        let Some(queue) = &self.queue else {
            return;
        };
        log::debug!(target: self.machine.log_target(), "-> {}", msg.name());
        if let Err(e) = queue.send(msg.encode(), zmq::DONTWAIT) {
            // The master timeout will reset the connection.
            log::error!(target: self.machine.log_target(), "cannot send {}: {e}", msg.name());
        }
        match &msg {
            SlaveRequest::Hello(_) => self.notifier.status("connecting to master"),
            SlaveRequest::Idle(_) => self.notifier.status("idle"),
            _ => {}
        }
    }

    fn start_build(&mut self, package: String, version: String, index_url: String) {
        self.notifier
            .status(&format!("building {package} {version}"));
        let spec = BuildSpec {
            package,
            version,
            index_url,
            extra_index_urls: self.config.extra_index_urls.clone(),
            python: self.config.python.clone(),
            parent_dir: self.config.dir.clone(),
            timeout: self.config.build_timeout,
            grace: builder::STOP_GRACE,
        };
        match BuildJob::start(spec) {
            Ok(job) => self.job = Some(job),
            Err(e) => {
                let why = format!("piw-slave: cannot start the build: {e}\n");
                log::error!(target: self.machine.log_target(), "{}", why.trim_end());
                self.events
                    .push_back(Event::BuildFinished(crate::protocol::BuildResult {
                        status: false,
                        duration: crate::protocol::TimeDelta::ZERO,
                        output: why,
                        files: Vec::new(),
                    }));
            }
        }
    }

    fn discard_build(&mut self) {
        if let Some(dir) = self.build_dir.take() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                log::warn!(target: "slave", "cannot remove {}: {e}", dir.display());
            }
        }
    }

    fn start_transfer(&mut self, filename: String) -> Result<(), String> {
        let target = self.target();
        let Some(dir) = &self.build_dir else {
            self.events
                .push_back(Event::TransferFailed("no finished build".into()));
            return Ok(());
        };
        let path = builder::wheel_dir(dir).join(&filename);
        let opened = File::open(&path).and_then(|f| f.metadata().map(|m| (f, m.len())));
        let (file, size) = match opened {
            Ok(x) => x,
            Err(e) => {
                let why = format!("cannot open {}: {e}", path.display());
                self.events.push_back(Event::TransferFailed(why));
                return Ok(());
            }
        };
        let addr = self.config.file_queue();
        let socket = (|| -> zmq::Result<zmq::Socket> {
            let s = self.ctx.socket(zmq::DEALER)?;
            s.set_ipv6(true)?;
            s.set_sndhwm(50)?;
            s.set_rcvhwm(50)?;
            s.set_linger(0)?;
            s.set_maxmsgsize(MAX_FILE_FRAME)?;
            s.connect(&addr)?;
            Ok(s)
        })()
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        log::info!(target: &target, "Sending {filename} to master on {addr}");
        let slave_id = self.machine.slave_id().unwrap_or(0);
        let (machine, first) =
            Transfer::start(slave_id, size, self.config.master_timeout, Instant::now());
        self.transfer = Some(ActiveTransfer {
            machine,
            socket,
            file,
            filename,
        });
        self.on_step(first)
    }

    fn shutdown(mut self, code: i32) -> i32 {
        self.notifier.stopping();
        self.transfer = None;
        if let Some(job) = self.job.take() {
            // Only after a build refused to stop: leave it to its SIGKILL.
            job.stop();
            self.build_dir = Some(job.dir().to_path_buf());
        }
        self.discard_build();
        // The queue closes with its 1 s linger, so a BYE still goes out.
        drop(self.queue.take());
        log::info!(target: "slave", "Exiting with status {code}");
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_check_is_0_23s() {
        let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        assert!(!clock_is_sane(at("2020-05-31T23:59:59Z")));
        assert!(clock_is_sane(at("2020-06-01T00:00:00Z")));
        assert!(clock_is_sane(chrono::Utc::now()));
    }
}
