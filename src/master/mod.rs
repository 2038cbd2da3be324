//! `piw-master`: one thread, one `zmq::poll` loop over every socket.
//!
//! piwheels' master is 13 threads talking over inproc sockets. Here the same
//! tasks (slave_driver, file_juggler, cloud_gazer, the_architect, the_scribe,
//! the_secretary, big_brother, mr_chase, lumberjack) are plain structs owned
//! by [`Master`]; what piwheels sends between threads becomes a method call.
//! The loop is a thin shell: it waits in `zmq::poll` until a socket is
//! readable, a signal arrives or the earliest timer is due, hands the event
//! to the task that owns it, and sends what that task returns.
//!
//! Invariants:
//! - nothing in the loop blocks except `zmq::poll` itself (database calls
//!   are short and bounded by statement timeouts; network calls have
//!   deadlines);
//! - no message from a peer can end the loop: bad input is logged and
//!   dropped (or answered, where the protocol has an answer);
//! - the process exits non-zero when it stops because of an error, so
//!   systemd's `Restart=on-failure` restarts it (piwheels exits 0).

pub mod big_brother;
pub mod cloud_gazer;
pub mod disk_guard;
pub mod file_juggler;
pub mod lumberjack;
pub mod mr_chase;
pub mod policy;
pub mod slave_driver;
mod sockets;
pub mod tasks;
pub mod the_architect;
pub mod timers;
pub mod web;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::config::master::MasterConfig;
use crate::db::Database;
use crate::logging::target;
use crate::protocol::router::{parse_router_frames, router_frames};
use crate::protocol::{ControlMessage, DecodeError, MasterHello, StatusMessage, WireMessage};
use crate::signals::{Signal, SignalFd};
use crate::systemd::Notifier;
use big_brother::BigBrother;
use cloud_gazer::{CloudGazer, CloudGazerConfig};
use disk_guard::{DiskAction, DiskGuard};
use file_juggler::FileJuggler;
use lumberjack::Lumberjack;
use mr_chase::MrChase;
use policy::BuildPolicy;
use slave_driver::{Alert, Env, SlaveControl, SlaveDriver};
pub use sockets::Sockets;
use tasks::StatusSink;
use the_architect::TheArchitect;
use timers::{Timer, Timers};
use web::{Web, WebConfig};

/// At most this many messages are taken from one socket per loop turn, so a
/// flood on one socket cannot starve the others or the timers.
const BATCH: usize = 100;

/// The longest `zmq::poll` sleeps even with no timer due.
const MAX_POLL: Duration = Duration::from_secs(60);

/// How often free space on the output path is checked (piwheels checks on
/// every 5 s main-loop cycle).
const DISK_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// A fatal error: the master logs it and exits with status 1.
#[derive(Debug)]
pub struct MasterError(pub String);

impl std::fmt::Display for MasterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MasterError {}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A `QUIT` on the control queue.
    Quit,
    /// SIGTERM or SIGINT.
    Signal,
}

/// The status PUB socket as the tasks' [`StatusSink`]. PUB never blocks:
/// with no subscriber, or a slow one past its HWM, messages are dropped,
/// which is what monitors expect (they ask for a replay with HELLO).
struct StatusPub<'a>(&'a zmq::Socket);

impl StatusSink for StatusPub<'_> {
    fn publish(&mut self, msg: StatusMessage) {
        if let Err(e) = self.0.send(msg.encode(), zmq::DONTWAIT) {
            log::debug!(target: target::MASTER, "status queue: {e}");
        }
    }
}

/// The running master: every task's state and the sockets they talk on.
pub struct Master {
    config: MasterConfig,
    sockets: Sockets,
    signals: SignalFd,
    notifier: Notifier,
    timers: Timers,
    db: Database,
    slave_driver: SlaveDriver,
    file_juggler: FileJuggler,
    architect: TheArchitect,
    mr_chase: MrChase,
    cloud_gazer: Option<CloudGazer>,
    lumberjack: Lumberjack,
    /// What this farm builds (`--allow-list`, `--newest-releases`).
    policy: BuildPolicy,
    web: Web,
    stats: BigBrother,
    /// The HELLO published to every monitor that says HELLO.
    hello: MasterHello,
    /// The whole master is paused (control `SLEEP null`, or the disk guard).
    paused: bool,
    /// A monitor's `SLEEP null` holds the pause (until its WAKE).
    monitor_paused: bool,
    /// Pauses on a full output disk and resumes when space is back.
    disk_guard: DiskGuard,
    /// The same for the output disk's inodes (its mark is set at the
    /// first reading, from the file system's number of inodes).
    inode_guard: DiskGuard,
}

impl Master {
    /// Binds every socket and prepares the tasks. `signals` must have been
    /// created before anything else started a thread.
    pub fn new(
        config: MasterConfig,
        signals: SignalFd,
        notifier: Notifier,
    ) -> Result<Master, MasterError> {
        for (opt, value) in &config.ignored_internal_queues {
            log::warn!(
                target: target::MASTER,
                "--{opt} {value} is ignored: this master runs every task in one loop and \
                 needs no {opt}"
            );
        }
        let db = Database::connect(&config.dsn)
            .map_err(|e| MasterError(format!("cannot use the database {}: {e}", config.dsn)))?;
        log::info!(target: target::MASTER, "connected to the {}", db.describe());
        let sockets = Sockets::bind(&config).map_err(|e| MasterError(e.to_string()))?;
        let file_juggler = FileJuggler::new(&config.output_path).map_err(|e| {
            MasterError(format!(
                "cannot prepare the output path {}: {e}",
                config.output_path.display()
            ))
        })?;
        let architect = TheArchitect::start(&sockets.ctx, &config.dsn, config.dev_mode)
            .map_err(|e| MasterError(format!("cannot start the_architect: {e}")))?;
        let slave_driver = SlaveDriver::new(&config.pypi_simple);
        let (now, utc) = (Instant::now(), now_utc());
        let mut db = db;
        let mut web = Web::new(WebConfig {
            output_path: config.output_path.clone(),
            dev_mode: config.dev_mode,
            base_url: config
                .web_base_url
                .clone()
                .unwrap_or_else(|| WebConfig::new(config.output_path.clone()).base_url),
            title: config.web_title.clone(),
            issues_url: config.web_issues_url.clone(),
        });
        web.start(&mut db, now, utc).map_err(|e| {
            MasterError(format!(
                "cannot write the web site under {}: {e}",
                config.output_path.display()
            ))
        })?;
        let stats = BigBrother::new(config.output_path.clone(), now, utc);
        let mut cloud_gazer = CloudGazer::new(
            CloudGazerConfig::from_master(&config),
            &sockets.ctx,
            &mut db,
        )
        .map_err(|e| MasterError(format!("cannot start cloud_gazer: {e}")))?;
        let policy = load_policy(&config).map_err(MasterError)?;
        cloud_gazer.set_policy(policy.clone());
        let (os_name, os_version) = crate::info::os_name_version();
        let hello = MasterHello {
            timestamp: now_utc(),
            label: crate::info::hostname(),
            os_name,
            os_version,
            board_revision: crate::info::board_revision(),
            board_serial: crate::info::board_serial(),
        };
        let now = Instant::now();
        let mut timers = Timers::new();
        if let Some(every) = notifier.watchdog_interval() {
            timers.every(Timer::Watchdog, every, now);
        }
        timers.every(Timer::DiskCheck, DISK_CHECK_INTERVAL, now);
        timers.every(Timer::ExpireSlaves, slave_driver::EXPIRY_INTERVAL, now);
        timers.every(Timer::BuildQueue, the_architect::REFRESH_INTERVAL, now);
        timers.every(Timer::ReadPypi, cloud_gazer::POLL_INTERVAL, now);
        timers.every(
            Timer::DownloadCount,
            lumberjack::REPORT_INTERVAL,
            now + lumberjack::REPORT_INTERVAL,
        );
        let disk_guard = DiskGuard::new(config.disk_low_water);
        Ok(Master {
            config,
            sockets,
            signals,
            notifier,
            timers,
            db,
            slave_driver,
            file_juggler,
            architect,
            mr_chase: MrChase::new(),
            cloud_gazer: Some(cloud_gazer),
            lumberjack: Lumberjack::new(),
            policy,
            web,
            stats,
            hello,
            paused: false,
            monitor_paused: false,
            disk_guard,
            inode_guard: DiskGuard::of(disk_guard::Unit::Inodes, 0),
        })
    }

    /// Runs the poll loop until QUIT or a signal, then shuts down in order.
    pub fn run(mut self) -> Result<Stop, MasterError> {
        log::info!(target: target::MASTER, "PiWheels Master version {}", crate::VERSION);
        self.apply_policy()?;
        self.notifier.ready();
        let stop = self.poll_loop();
        self.notifier.stopping();
        match stop {
            Ok(Stop::Quit) => log::warn!(target: target::MASTER, "shutting down on QUIT message"),
            Ok(Stop::Signal) => log::warn!(target: target::MASTER, "shutting down on signal"),
            Err(ref e) => log::error!(target: target::MASTER, "shutting down: {e}"),
        }
        self.shutdown();
        stop
    }

    fn poll_loop(&mut self) -> Result<Stop, MasterError> {
        loop {
            let now = Instant::now();
            let gazer_backlog = self.cloud_gazer.as_ref().is_some_and(|g| g.has_backlog());
            let timeout = if gazer_backlog {
                // More PyPI events to apply: look at the sockets, then go on.
                0
            } else {
                let mut deadline = self.timers.next_deadline();
                for d in [
                    self.web.next_deadline(),
                    self.web.checkpoint_deadline(),
                    Some(self.stats.next_deadline()),
                    self.lumberjack.next_deadline(now),
                ] {
                    deadline = match (deadline, d) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                timers::timeout_ms(now, deadline, MAX_POLL)
            };
            let gazer = self.cloud_gazer.as_ref().expect("running");
            let ready = {
                let mut items = [
                    zmq::PollItem::from_fd(self.signals.raw_fd(), zmq::POLLIN),
                    self.sockets.control.as_poll_item(zmq::POLLIN),
                    self.sockets.slave.as_poll_item(zmq::POLLIN),
                    self.sockets.file.as_poll_item(zmq::POLLIN),
                    self.architect.socket().as_poll_item(zmq::POLLIN),
                    // mr_chase waits while the master is paused, as piwheels'
                    // does; its clients simply wait for their reply.
                    self.sockets.import.as_poll_item(if self.paused {
                        zmq::PollEvents::empty()
                    } else {
                        zmq::POLLIN
                    }),
                    gazer.poll_item(),
                    self.sockets.log.as_poll_item(zmq::POLLIN),
                ];
                match zmq::poll(&mut items, timeout) {
                    Ok(_) => {}
                    Err(zmq::Error::EINTR) => continue,
                    Err(e) => return Err(MasterError(format!("poll failed: {e}"))),
                }
                items.map(|i| i.is_readable())
            };
            if ready[0] {
                if let Some(stop) = self.on_signals() {
                    return Ok(stop);
                }
            }
            if ready[1] {
                if let Some(stop) = self.drain_control() {
                    return Ok(stop);
                }
            }
            if ready[2] {
                self.drain_slaves();
            }
            if ready[3] {
                self.drain_files();
            }
            if ready[4] {
                self.on_build_queue();
            }
            if ready[5] {
                self.drain_imports();
            }
            if ready[6] || gazer_backlog {
                self.read_pypi(false);
            }
            if ready[7] {
                self.lumberjack
                    .drain(&self.sockets.log, lumberjack::DRAIN_MAX);
            }
            self.on_alerts();
            let now = Instant::now();
            while let Some(timer) = self.timers.pop_due(now) {
                self.on_timer(timer);
            }
            if self.lumberjack.flush_due(now) {
                // Every hit of this turn in one transaction.
                self.lumberjack.flush(&mut self.db, now);
            }
            if self.web.next_deadline().is_some_and(|d| d <= now) {
                self.web.on_timer(now, now_utc(), &mut self.db);
            }
            if self.stats.next_deadline() <= now {
                let mut status = StatusPub(&self.sockets.status);
                self.stats
                    .on_timer(now, now_utc(), &mut self.db, &mut self.web, &mut status);
            }
            self.web.checkpoint_due(&mut self.db, now);
        }
    }

    /// Serves a batch of slave requests.
    fn drain_slaves(&mut self) {
        for _ in 0..BATCH {
            let frames = match self.sockets.slave.recv_multipart(zmq::DONTWAIT) {
                Ok(f) => f,
                Err(zmq::Error::EAGAIN) => break,
                Err(e) => {
                    log::error!(target: target::SLAVE_DRIVER, "slave queue: {e}");
                    break;
                }
            };
            let request = match parse_router_frames(&frames) {
                Ok(r) => r,
                Err(e) => {
                    log::error!(target: target::SLAVE_DRIVER, "{e}");
                    continue;
                }
            };
            let changes = self.web.changes();
            let mut status = StatusPub(&self.sockets.status);
            let mut env = Env {
                db: &mut self.db,
                files: &mut self.file_juggler,
                web: &mut self.web,
                stats: &mut self.stats,
                status: &mut status,
                now: Instant::now(),
                utc: now_utc(),
            };
            let reply = self
                .slave_driver
                .handle(request.identity, request.payload, &mut env);
            // A finished build's page rewrites are saved before its DONE.
            if self.web.changes() != changes {
                self.web.checkpoint(&mut self.db);
            }
            if let Some(reply) = reply {
                if matches!(reply, crate::protocol::SlaveReply::Sleep { paused: false }) {
                    self.architect.starved(Instant::now());
                }
                let out = router_frames(request.identity, reply.encode());
                if let Err(e) = self.sockets.slave.send_multipart(out, zmq::DONTWAIT) {
                    log::error!(target: target::SLAVE_DRIVER, "cannot reply to a slave: {e}");
                }
            }
        }
    }

    /// Serves a batch of file-transfer frames.
    fn drain_files(&mut self) {
        for _ in 0..BATCH {
            let frames = match self.sockets.file.recv_multipart(zmq::DONTWAIT) {
                Ok(f) => f,
                Err(zmq::Error::EAGAIN) => break,
                Err(e) => {
                    log::error!(target: target::FILE_JUGGLER, "file queue: {e}");
                    break;
                }
            };
            let Some((identity, rest)) = frames.split_first() else {
                continue;
            };
            for reply in self.file_juggler.on_frames(identity, rest) {
                let out = reply.with_identity(identity);
                if let Err(e) = self.sockets.file.send_multipart(out, zmq::DONTWAIT) {
                    log::warn!(target: target::FILE_JUGGLER, "cannot send to a peer: {e}");
                }
            }
        }
    }

    /// Serves a batch of piw-import/add/remove/rebuild requests.
    fn drain_imports(&mut self) {
        for _ in 0..BATCH {
            let frames = match self.sockets.import.recv_multipart(zmq::DONTWAIT) {
                Ok(f) => f,
                Err(zmq::Error::EAGAIN) => break,
                Err(e) => {
                    log::error!(target: target::MR_CHASE, "import queue: {e}");
                    break;
                }
            };
            let request = match parse_router_frames(&frames) {
                Ok(r) => r,
                Err(e) => {
                    log::error!(target: target::MR_CHASE, "{e}");
                    continue;
                }
            };
            let changes = self.web.changes();
            let mut env = mr_chase::Env {
                db: &mut self.db,
                files: &mut self.file_juggler,
                web: &mut self.web,
                skip: &mut self.slave_driver,
                stats: &mut self.stats,
                policy: &self.policy,
                now: Instant::now(),
                utc: now_utc(),
            };
            let replies = self
                .mr_chase
                .handle(request.identity, request.payload, &mut env);
            // An import's page rewrites are saved before its DONE.
            if self.web.changes() != changes {
                self.web.checkpoint(&mut self.db);
            }
            self.send_import_replies(replies);
        }
    }

    fn send_import_replies(&self, replies: Vec<mr_chase::Reply>) {
        for (client, reply) in replies {
            let out = router_frames(&client, reply.encode());
            if let Err(e) = self.sockets.import.send_multipart(out, zmq::DONTWAIT) {
                log::error!(target: target::MR_CHASE, "cannot reply to a client: {e}");
            }
        }
    }

    /// Installs queues the_architect finished.
    fn on_build_queue(&mut self) {
        match self.architect.take() {
            Some(Ok(refreshed)) => self.slave_driver.set_queues(
                refreshed.queues,
                &refreshed.abis,
                Instant::now(),
                &mut self.stats,
            ),
            Some(Err(e)) => {
                log::error!(target: target::THE_ARCHITECT, "cannot refresh the build queue: {e}")
            }
            None => {}
        }
    }

    /// Brings the database's skips in line with the build policy (at start
    /// and after a reload) and has the pages and queues follow.
    fn apply_policy(&mut self) -> Result<(), MasterError> {
        let changes = self
            .policy
            .reevaluate(&mut self.db)
            .map_err(|e| MasterError(format!("cannot apply the build policy: {e}")))?;
        policy::log_changes(&self.policy, &changes);
        // Only packages whose skips changed need their pages rewritten; a
        // big change is cheaper as one chunked full rewrite.
        if changes.packages.len() > 1000 {
            use tasks::WebQueue;
            let _ = self.web.request_all(false, &mut self.db);
        } else {
            for package in changes.packages {
                tasks::WebQueue::request(
                    &mut self.web,
                    tasks::WebRequest::Project(package),
                    &mut self.db,
                );
            }
        }
        self.architect.refresh_now(Instant::now());
        Ok(())
    }

    /// SIGHUP: reads the allow-list again and applies it. A list that
    /// cannot be read leaves the old policy in force.
    fn reload_policy(&mut self) {
        let policy = match load_policy(&self.config) {
            Ok(p) => p,
            Err(e) => {
                log::error!(target: target::MASTER, "SIGHUP: {e}; keeping the current build policy");
                return;
            }
        };
        log::warn!(target: target::MASTER, "SIGHUP: reloading the build policy");
        let old = std::mem::replace(&mut self.policy, policy);
        if let Err(e) = self.apply_policy() {
            log::error!(target: target::MASTER, "{e}; keeping the current build policy");
            self.policy = old;
            return;
        }
        if let Some(g) = self.cloud_gazer.as_mut() {
            g.set_policy(self.policy.clone());
        }
    }

    /// Lets cloud_gazer start a PyPI fetch (`timer`) or apply what one
    /// brought back.
    fn read_pypi(&mut self, timer: bool) {
        let Some(gazer) = self.cloud_gazer.as_mut() else {
            return;
        };
        let now = Instant::now();
        if timer {
            gazer.on_timer(now, &mut self.db, &mut self.web, &mut self.slave_driver);
        } else {
            gazer.on_ready(now, &mut self.db, &mut self.web, &mut self.slave_driver);
        }
    }

    /// Acts on problems tasks reported.
    fn on_alerts(&mut self) {
        for alert in self.slave_driver.take_alerts() {
            match alert {
                Alert::Storage(why) => {
                    // ENOSPC is the same error for bytes and inodes: the
                    // inodes are to blame when they are the ones short.
                    let inodes = self.read_inodes();
                    let action = match inodes {
                        Some(free) if free <= self.inode_guard.low_water() => {
                            self.inode_guard.on_full(free, &why)
                        }
                        _ => {
                            // Without a reading, wait for a low-water mark
                            // more than none.
                            let free = crate::info::disk_usage(&self.config.output_path)
                                .map(|(_, free)| free)
                                .unwrap_or(0);
                            self.disk_guard.on_full(free, &why)
                        }
                    };
                    self.on_disk_action(action);
                }
            }
        }
    }

    fn on_signals(&mut self) -> Option<Stop> {
        loop {
            match self.signals.read() {
                Ok(Some(Signal::Term | Signal::Int)) => return Some(Stop::Signal),
                Ok(Some(Signal::Hup)) => self.reload_policy(),
                Ok(None) => return None,
                Err(e) => {
                    log::error!(target: target::MASTER, "cannot read signals: {e}");
                    return None;
                }
            }
        }
    }

    fn drain_control(&mut self) -> Option<Stop> {
        for _ in 0..BATCH {
            let frame = match self.sockets.control.recv_bytes(zmq::DONTWAIT) {
                Ok(frame) => frame,
                Err(zmq::Error::EAGAIN) => break,
                Err(e) => {
                    log::error!(target: target::MASTER, "control queue: {e}");
                    break;
                }
            };
            if self.sockets.control.get_rcvmore().unwrap_or(false) {
                // One frame per message on this queue; skip the rest.
                log::error!(
                    target: target::MASTER,
                    "control queue: {}",
                    DecodeError::invalid_structure("multi-part message")
                );
                while self.sockets.control.get_rcvmore().unwrap_or(false) {
                    let _ = self.sockets.control.recv_bytes(zmq::DONTWAIT);
                }
                continue;
            }
            match ControlMessage::decode(&frame) {
                Ok(msg) => {
                    if let Some(stop) = self.on_control(msg) {
                        return Some(stop);
                    }
                }
                Err(e) => log::error!(target: target::MASTER, "control queue: {e}"),
            }
        }
        None
    }

    /// Handles one control message (piwheels' main-loop handlers).
    fn on_control(&mut self, msg: ControlMessage) -> Option<Stop> {
        let (what, id) = match msg {
            ControlMessage::Quit => return Some(Stop::Quit),
            ControlMessage::Hello => {
                log::warn!(target: target::MASTER, "sending status to new monitor");
                let mut status = StatusPub(&self.sockets.status);
                status.publish(StatusMessage::Hello(self.hello.clone()));
                self.stats.replay(&mut status);
                self.slave_driver.replay(&mut status);
                return None;
            }
            ControlMessage::Sleep(None) => {
                self.monitor_paused = true;
                self.pause("SLEEP from a monitor");
                return None;
            }
            ControlMessage::Wake(None) => {
                // The operator's word overrides the disk guard too.
                self.monitor_paused = false;
                self.disk_guard.wake();
                self.inode_guard.wake();
                self.resume();
                self.slave_driver.control(SlaveControl::Wake, None);
                return None;
            }
            ControlMessage::Kill(id) => (SlaveControl::Kill, id),
            ControlMessage::Skip(id) => (SlaveControl::Skip, id),
            ControlMessage::Sleep(id) => (SlaveControl::Sleep, id),
            ControlMessage::Wake(id) => (SlaveControl::Wake, id),
        };
        let n = self.slave_driver.control(what, id);
        match id {
            Some(id) if n == 0 => {
                log::warn!(target: target::MASTER, "{what:?}: no slave with id {id}")
            }
            Some(id) => log::warn!(target: target::MASTER, "{what:?} slave {id}"),
            None => log::warn!(target: target::MASTER, "{what:?} all {n} slave(s)"),
        }
        None
    }

    fn pause(&mut self, why: &str) {
        if !self.paused {
            log::warn!(target: target::MASTER, "pausing operations ({why})");
            self.paused = true;
            self.slave_driver.set_paused(true);
            self.architect.set_paused(true);
            self.web.pause();
            self.stats.pause();
            self.lumberjack.pause();
            if let Some(g) = self.cloud_gazer.as_mut() {
                g.pause();
            }
            self.notifier.status(&format!("paused: {why}"));
        }
    }

    fn resume(&mut self) {
        if self.paused {
            log::warn!(target: target::MASTER, "resuming operations");
            self.paused = false;
            self.slave_driver.set_paused(false);
            self.architect.set_paused(false);
            self.web.resume();
            self.stats.resume();
            self.lumberjack.resume();
            if let Some(g) = self.cloud_gazer.as_mut() {
                g.resume();
            }
            self.notifier.status("running");
        }
    }

    fn on_timer(&mut self, timer: Timer) {
        match timer {
            Timer::Watchdog => self.notifier.watchdog_ping(),
            Timer::DiskCheck => self.check_disk(),
            Timer::ExpireSlaves => {
                let mut status = StatusPub(&self.sockets.status);
                let mut env = Env {
                    db: &mut self.db,
                    files: &mut self.file_juggler,
                    web: &mut self.web,
                    stats: &mut self.stats,
                    status: &mut status,
                    now: Instant::now(),
                    utc: now_utc(),
                };
                self.slave_driver.expire(&mut env);
                let mut env = mr_chase::Env {
                    db: &mut self.db,
                    files: &mut self.file_juggler,
                    web: &mut self.web,
                    skip: &mut self.slave_driver,
                    stats: &mut self.stats,
                    policy: &self.policy,
                    now: Instant::now(),
                    utc: now_utc(),
                };
                let replies = self.mr_chase.expire(&mut env);
                self.send_import_replies(replies);
            }
            Timer::BuildQueue => self.architect.refresh(Instant::now()),
            Timer::ReadPypi => self.read_pypi(true),
            Timer::DownloadCount => self.lumberjack.report(&mut self.stats),
        }
    }

    /// Reads the free space of the output path for the disk guard
    /// (piwheels 0.23 only pauses, once; we also resume).
    fn check_disk(&mut self) {
        match crate::info::disk_usage(&self.config.output_path) {
            Ok((_, free)) => {
                let action = self.disk_guard.on_reading(free);
                self.on_disk_action(action);
            }
            Err(e) => log::debug!(
                target: target::MASTER,
                "cannot check free space on {}: {e}",
                self.config.output_path.display()
            ),
        }
        if let Some(free) = self.read_inodes() {
            let action = self.inode_guard.on_reading(free);
            self.on_disk_action(action);
        }
    }

    /// Free inodes of the output path (None where the file system has no
    /// fixed number, or it cannot be read); sets the inode guard's mark.
    fn read_inodes(&mut self) -> Option<u64> {
        let (total, free) = crate::info::inode_usage(&self.config.output_path).ok()??;
        self.inode_guard
            .set_low_water(disk_guard::inode_low_water(total));
        Some(free)
    }

    fn on_disk_action(&mut self, action: Option<DiskAction>) {
        match action {
            Some(DiskAction::Pause(why)) => {
                log::error!(target: target::MASTER, "{why} ({})", self.config.output_path.display());
                self.pause(&why);
            }
            Some(DiskAction::Resume(why))
                if self.disk_guard.is_holding() || self.inode_guard.is_holding() =>
            {
                log::warn!(target: target::MASTER, "{why}, but the output disk is still short of space or inodes");
            }
            Some(DiskAction::Resume(why)) if !self.monitor_paused => {
                log::warn!(target: target::MASTER, "{why} ({})", self.config.output_path.display());
                self.resume();
            }
            Some(DiskAction::Resume(why)) => log::warn!(
                target: target::MASTER,
                "{why}, but a monitor's SLEEP still holds the pause"
            ),
            None => {}
        }
    }

    fn shutdown(mut self) {
        self.notifier.extend_timeout(Duration::from_secs(10));
        if let Some(g) = self.cloud_gazer.take() {
            g.shutdown();
        }
        self.lumberjack.shutdown(&mut self.db);
        // The secretary's buffer survives the restart in rewrites_pending.
        if let Err(e) = self.web.shutdown(&mut self.db) {
            log::error!(target: target::THE_SECRETARY, "cannot save pending page rewrites: {e}");
        }
        self.architect.shutdown();
        self.slave_driver.shutdown(&mut self.file_juggler);
        self.file_juggler.clear();
        // Every socket must close before the context terminates, or the
        // termination waits for ever: the architect's wake socket first,
        // then ours (with their 1 s linger), then the context.
        let Master {
            sockets, architect, ..
        } = self;
        drop(architect);
        drop(sockets);
        log::info!(target: target::MASTER, "closed all queues");
    }

    /// Whether the master is paused (for tests and the status line).
    pub fn is_paused(&self) -> bool {
        self.paused
    }
}

/// The build policy the configuration asks for.
fn load_policy(config: &MasterConfig) -> Result<BuildPolicy, String> {
    match &config.allow_list {
        None => Ok(BuildPolicy::all()),
        Some(path) => BuildPolicy::load(path, config.newest_releases),
    }
}

/// Now, in UTC, at microsecond precision (what piwheels' clocks carry).
pub fn now_utc() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}
