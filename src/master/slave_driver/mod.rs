//! slave_driver: talks to the build slaves on the slave queue (piwheels'
//! `SlaveDriver`, protocol 0.23).
//!
//! Slaves drive the conversation: a slave says IDLE and gets BUILD or
//! SLEEP, says BUSY while it builds and gets CONT (or DONE to abandon it),
//! says BUILT and is asked to SEND each wheel in turn (the file juggler
//! receives it), and gets DONE when everything is in. Each slave is a
//! [`slave::Slave`] with an explicit state; [`SlaveDriver::handle`] takes
//! one request and returns the reply, touching the database, the file
//! juggler, the web output, the stats and the status feed through the
//! [`Env`] it is lent. It owns no socket.
//!
//! Every reply but CONT, and every stats report, is mirrored to the status
//! feed as a `SLAVE` message, and [`SlaveDriver::replay`] repeats the whole
//! picture for a monitor that says HELLO.
//!
//! Beyond piwheels, deliberately:
//! - a file that fails verification is asked for again (0.23 re-EXPECTs
//!   first, as we do) at most [`MAX_ATTEMPTS`] times, then the slave gets
//!   DIE: a slave that keeps sending the wrong bytes is lying or broken;
//! - a file name that is not a plain wheel name gets DIE at once;
//! - SLEEP for one slave is honoured (piwheels accepts it and ignores it);
//! - a build whose database write fails is kept and written again later,
//!   not dropped.

pub mod queue;
pub mod slave;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::db::{BuildLog, BuiltFile, Database};
use crate::logging::target;
use crate::master::file_juggler::{ExpectError, FileJuggler, VerifyError, armv6l_name};
use crate::master::tasks::{SkipQueue, StatsSink, StatusSink, WebQueue, WebRequest};
use crate::protocol::{
    BuildResult, FileState, SlaveReply, SlaveRequest, SlaveStatus, StatusMessage, WireMessage,
};
use queue::{AbiQueue, BuildQueues};
use slave::{Slave, State, Transfers, Verb};

/// How often slaves that went silent are looked for (piwheels: 10 s).
pub const EXPIRY_INTERVAL: Duration = Duration::from_secs(10);

/// How many times one file may fail verification before the slave is told
/// to DIE.
pub const MAX_ATTEMPTS: u32 = 3;

/// Builds waiting for the database to come back are kept up to this many.
const MAX_UNLOGGED: usize = 1000;

/// Slaves known at once. Each HELLO from a new socket adds one, kept for
/// the busy timeout the peer itself chose, so without a cap a HELLO flood
/// from many sockets would grow the master without bound. Far above any
/// real farm (piwheels runs tens of slaves).
pub const MAX_SLAVES: usize = 10_000;

/// What the slave driver borrows from the rest of the master to handle one
/// event.
pub struct Env<'a> {
    pub db: &'a mut Database,
    pub files: &'a mut FileJuggler,
    pub web: &'a mut dyn WebQueue,
    pub stats: &'a mut dyn StatsSink,
    pub status: &'a mut dyn StatusSink,
    /// Monotonic now (expiry and exclusion windows).
    pub now: Instant,
    /// Wall-clock now, in UTC (timestamps shown to monitors).
    pub utc: DateTime<Utc>,
}

/// What the driver asks of the master, beyond replying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    /// Our storage failed (disk full): pause the master, and say why.
    Storage(String),
}

/// A build logged nowhere yet because the database was away.
#[derive(Debug)]
struct Unlogged {
    log: BuildLog,
    output: String,
}

/// The slave driver's state: the slaves, the build queues and the builds
/// still to be written to the database.
pub struct SlaveDriver {
    slaves: HashMap<Vec<u8>, Slave>,
    next_id: u64,
    queues: BuildQueues,
    pypi_simple: String,
    paused: bool,
    unlogged: Vec<Unlogged>,
    alerts: Vec<Alert>,
    /// HELLOs refused because of [`MAX_SLAVES`] (logged sparingly).
    refused: u64,
}

impl SlaveDriver {
    /// A driver that sends slaves to `pypi_simple` (the `--pypi-simple`
    /// URL, in ACK) for their sources.
    pub fn new(pypi_simple: &str) -> SlaveDriver {
        SlaveDriver {
            slaves: HashMap::new(),
            next_id: 1,
            queues: BuildQueues::new(),
            pypi_simple: pypi_simple.to_string(),
            paused: false,
            unlogged: Vec::new(),
            alerts: Vec::new(),
            refused: 0,
        }
    }

    /// Pauses or resumes handing out work (the master's SLEEP/WAKE null).
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// The connected slaves (for tests and the status feed).
    pub fn slaves(&self) -> impl Iterator<Item = &Slave> {
        self.slaves.values()
    }

    /// Problems the master should act on (drained).
    pub fn take_alerts(&mut self) -> Vec<Alert> {
        std::mem::take(&mut self.alerts)
    }

    /// Installs fresh build queues from the_architect; `abis` is every
    /// build ABI in the database.
    pub fn set_queues(
        &mut self,
        queues: HashMap<String, AbiQueue>,
        abis: &[String],
        now: Instant,
        stats: &mut dyn StatsSink,
    ) {
        self.queues.replace(queues, abis, now);
        stats.build_queue(&self.queues.lengths());
    }

    /// The queues (for tests).
    pub fn queues(&self) -> &BuildQueues {
        &self.queues
    }

    /// Handles one request payload from the slave whose socket identity is
    /// `identity`; returns the reply to send, if any.
    pub fn handle(&mut self, identity: &[u8], payload: &[u8], env: &mut Env) -> Option<SlaveReply> {
        let request = match SlaveRequest::decode(payload) {
            Ok(r) => r,
            Err(e) => {
                log::error!(target: target::SLAVE_DRIVER, "{e}");
                return None;
            }
        };
        if !self.slaves.contains_key(identity) {
            match request {
                SlaveRequest::Hello(_) if self.slaves.len() >= MAX_SLAVES => {
                    // Silence, as for a stranger: an honest slave retries.
                    if self.refused % 1000 == 0 {
                        log::error!(
                            target: target::SLAVE_DRIVER,
                            "{MAX_SLAVES} slaves already known: ignoring HELLO from a new one \
                             ({} ignored so far)",
                            self.refused + 1
                        );
                    }
                    self.refused += 1;
                    return None;
                }
                SlaveRequest::Hello(hello) => {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.slaves
                        .insert(identity.to_vec(), Slave::new(id, hello, env.utc, env.now));
                }
                other => {
                    // A slave from before a master restart, or a stranger:
                    // piwheels stays silent, and so do we.
                    log::error!(
                        target: target::SLAVE_DRIVER,
                        "invalid first message from slave: {}",
                        other.name()
                    );
                    return None;
                }
            }
            return self.reply(identity, env, |d, s, env| d.do_hello(s, env));
        }
        self.reply(identity, env, move |d, s, env| match request {
            SlaveRequest::Hello(_) => d.do_hello(s, env),
            SlaveRequest::Idle(stats) => {
                d.on_stats(s, stats, env);
                d.do_idle(s, env)
            }
            SlaveRequest::Busy(stats) => {
                d.on_stats(s, stats, env);
                d.do_busy(s)
            }
            SlaveRequest::Built(result) => d.do_built(s, result, env),
            SlaveRequest::Sent => d.do_sent(s, env),
            SlaveRequest::Bye => d.do_bye(s, env),
        })
    }

    /// Runs a handler on the slave at `identity` and applies and mirrors the
    /// reply. `None` from the handler means "no reply" (BYE).
    fn reply(
        &mut self,
        identity: &[u8],
        env: &mut Env,
        handler: impl FnOnce(&mut Self, &mut Slave, &mut Env) -> Option<SlaveReply>,
    ) -> Option<SlaveReply> {
        // Take the slave out so the handler may use the rest of the driver.
        let mut slave = self.slaves.remove(identity)?;
        slave.touch(env.utc, env.now);
        let reply = handler(self, &mut slave, env);
        match &reply {
            Some(r) => {
                slave.replied(r, env.utc);
                if !matches!(r, SlaveReply::Cont) {
                    env.status.publish(StatusMessage::Slave(SlaveStatus::reply(
                        slave.id, env.utc, r,
                    )));
                }
                self.slaves.insert(identity.to_vec(), slave);
            }
            None => {
                // BYE: the slave is gone.
                env.files.abandon(slave.id);
            }
        }
        reply
    }

    fn on_stats(&mut self, slave: &mut Slave, stats: crate::protocol::SlaveStats, env: &mut Env) {
        env.status.publish(StatusMessage::Slave(SlaveStatus::stats(
            slave.id, env.utc, &stats,
        )));
        slave.push_stats(stats);
    }

    fn do_hello(&mut self, slave: &mut Slave, env: &mut Env) -> Option<SlaveReply> {
        let h = &slave.hello;
        log::warn!(
            target: target::SLAVE_DRIVER,
            "slave {} ({}): hello (build_timeout={}, busy_timeout={}, abi={}, platform={}, \
             os_name={}, os_version={}, board_revision={}, board_serial={})",
            slave.id,
            h.label,
            h.build_timeout,
            h.busy_timeout,
            h.native_abi,
            h.native_platform,
            h.os_name,
            h.os_version,
            h.board_revision,
            h.board_serial
        );
        // A repeated HELLO on the same socket starts the slave afresh.
        env.files.abandon(slave.id);
        env.status.publish(StatusMessage::Slave(SlaveStatus::hello(
            slave.id,
            slave.first_seen,
            &slave.hello,
        )));
        Some(SlaveReply::Ack {
            slave_id: slave.id,
            pypi_url: self.pypi_simple.clone(),
        })
    }

    fn protocol_error(&self, slave: &Slave, what: &str) -> Option<SlaveReply> {
        log::error!(
            target: target::SLAVE_DRIVER,
            "slave {} ({}): protocol error ({what} while {})",
            slave.id,
            slave.hello.label,
            slave.state.name()
        );
        Some(SlaveReply::Die)
    }

    fn do_idle(&mut self, slave: &mut Slave, env: &mut Env) -> Option<SlaveReply> {
        if !slave.accepts(Verb::Idle) {
            return self.protocol_error(slave, "IDLE");
        }
        if slave.killed {
            log::warn!(target: target::SLAVE_DRIVER, "slave {} ({}): killed", slave.id, slave.hello.label);
            return Some(SlaveReply::Die);
        }
        if self.paused || slave.sleeping {
            log::info!(
                target: target::SLAVE_DRIVER,
                "slave {} ({}): sleeping because {} is paused",
                slave.id,
                slave.hello.label,
                if self.paused { "the master" } else { "this slave" }
            );
            return Some(SlaveReply::Sleep { paused: true });
        }
        let window = slave.hello.build_timeout.to_std().unwrap_or(Duration::ZERO);
        match self.queues.next(&slave.hello.native_abi, window, env.now) {
            Some((package, version)) => {
                log::info!(
                    target: target::SLAVE_DRIVER,
                    "slave {} ({}): build {package} {version}",
                    slave.id,
                    slave.hello.label
                );
                env.stats.build_queue(&self.queues.lengths());
                Some(SlaveReply::Build { package, version })
            }
            None => {
                log::info!(
                    target: target::SLAVE_DRIVER,
                    "slave {} ({}): sleeping because no builds",
                    slave.id,
                    slave.hello.label
                );
                Some(SlaveReply::Sleep { paused: false })
            }
        }
    }

    fn do_busy(&mut self, slave: &mut Slave) -> Option<SlaveReply> {
        if slave.skipped {
            log::info!(target: target::SLAVE_DRIVER, "slave {} ({}): build skipped", slave.id, slave.hello.label);
            return Some(SlaveReply::Done);
        }
        Some(SlaveReply::Cont)
    }

    fn do_built(
        &mut self,
        slave: &mut Slave,
        result: BuildResult,
        env: &mut Env,
    ) -> Option<SlaveReply> {
        if !slave.accepts(Verb::Built) {
            return self.protocol_error(slave, "BUILT");
        }
        let State::Building { package, version } = &slave.state else {
            return self.protocol_error(slave, "BUILT");
        };
        let (package, version) = (package.clone(), version.clone());
        if slave.skipped {
            // Skipped (perhaps because something is wrong with the slave):
            // throw the result away without recording anything.
            log::info!(target: target::SLAVE_DRIVER, "slave {} ({}): build skipped", slave.id, slave.hello.label);
            return Some(SlaveReply::Done);
        }
        let mut files = with_armv6l_copies(&result.files);
        files.sort_by(|a, b| a.0.filename.cmp(&b.0.filename));
        files.dedup_by(|a, b| a.0.filename == b.0.filename);
        let mut transfers = Transfers {
            package,
            version,
            result,
            files,
            attempts: 0,
        };
        if transfers.result.status && transfers.next_file().is_some() {
            log::info!(target: target::SLAVE_DRIVER, "slave {} ({}): build succeeded", slave.id, slave.hello.label);
            return self.send_next(slave, transfers, env);
        }
        log::info!(target: target::SLAVE_DRIVER, "slave {} ({}): build failed", slave.id, slave.hello.label);
        // A "success" with no files goes down this path too, logged as it
        // came (piwheels does the same).
        transfers.files.clear();
        self.log_build(slave, transfers, env);
        Some(SlaveReply::Done)
    }

    /// Expects the next file and tells the slave to send it, or DIE if the
    /// file cannot be accepted.
    fn send_next(
        &mut self,
        slave: &mut Slave,
        transfers: Transfers,
        env: &mut Env,
    ) -> Option<SlaveReply> {
        let file = transfers.next_file().expect("caller checked").clone();
        match env.files.expect(slave.id, &file) {
            Ok(()) => {
                log::info!(
                    target: target::SLAVE_DRIVER,
                    "slave {} ({}): send {}",
                    slave.id,
                    slave.hello.label,
                    file.filename
                );
                slave.state = State::Sending(Box::new(transfers));
                Some(SlaveReply::Send {
                    filename: file.filename,
                })
            }
            Err(ExpectError::Storage(e)) => {
                log::error!(
                    target: target::SLAVE_DRIVER,
                    "slave {} ({}): cannot receive {}: {e}; dropping the build",
                    slave.id,
                    slave.hello.label,
                    file.filename
                );
                self.alerts.push(Alert::Storage(e.to_string()));
                Some(SlaveReply::Done)
            }
            Err(e) => {
                log::error!(
                    target: target::SLAVE_DRIVER,
                    "slave {} ({}): {e}",
                    slave.id,
                    slave.hello.label
                );
                Some(SlaveReply::Die)
            }
        }
    }

    fn do_sent(&mut self, slave: &mut Slave, env: &mut Env) -> Option<SlaveReply> {
        if !slave.accepts(Verb::Sent) {
            return self.protocol_error(slave, "SENT");
        }
        let State::Sending(transfers) = std::mem::replace(&mut slave.state, State::Ready) else {
            return self.protocol_error(slave, "SENT");
        };
        let mut transfers = *transfers;
        let filename = transfers
            .next_file()
            .map(|f| f.filename.clone())
            .unwrap_or_default();
        match env.files.verify(slave.id, &transfers.package) {
            Ok(_) => {
                log::info!(
                    target: target::SLAVE_DRIVER,
                    "slave {} ({}): verified transfer of {filename}",
                    slave.id,
                    slave.hello.label
                );
                if let Ok((size, free)) = crate::info::disk_usage(env.files.output()) {
                    env.stats.disk(size, free);
                }
                transfers.mark_current_done();
                if transfers.next_file().is_some() {
                    return self.send_next(slave, transfers, env);
                }
                self.log_build(slave, transfers, env);
                Some(SlaveReply::Done)
            }
            Err(VerifyError::Storage(e)) => {
                log::error!(
                    target: target::SLAVE_DRIVER,
                    "slave {} ({}): cannot store {filename}: {e}; dropping the build",
                    slave.id,
                    slave.hello.label
                );
                self.alerts.push(Alert::Storage(e.to_string()));
                Some(SlaveReply::Done)
            }
            Err(e) => {
                transfers.attempts += 1;
                if transfers.attempts >= MAX_ATTEMPTS {
                    log::error!(
                        target: target::SLAVE_DRIVER,
                        "slave {} ({}): {filename} failed verification {} times ({e}); \
                         telling the slave to die",
                        slave.id,
                        slave.hello.label,
                        transfers.attempts
                    );
                    return Some(SlaveReply::Die);
                }
                log::warn!(
                    target: target::SLAVE_DRIVER,
                    "slave {} ({}): {e}; re-send {filename}",
                    slave.id,
                    slave.hello.label
                );
                // 0.23: expect it again before asking for it again.
                self.send_next(slave, transfers, env)
            }
        }
    }

    fn do_bye(&mut self, slave: &mut Slave, env: &mut Env) -> Option<SlaveReply> {
        log::warn!(target: target::SLAVE_DRIVER, "slave {} ({}): shutdown", slave.id, slave.hello.label);
        // Monitors learn of the departure as a DIE.
        env.status.publish(StatusMessage::Slave(SlaveStatus::reply(
            slave.id,
            env.utc,
            &SlaveReply::Die,
        )));
        None
    }

    /// Writes a finished build to the database, then its log and pages to
    /// the web output. If the database is away, the build is kept and
    /// written by [`SlaveDriver::retry_unlogged`] later.
    fn log_build(&mut self, slave: &Slave, transfers: Transfers, env: &mut Env) {
        let log = BuildLog {
            package: transfers.package,
            version: transfers.version,
            built_by: i32::try_from(slave.id).unwrap_or(i32::MAX),
            duration: transfers.result.duration.to_std().unwrap_or(Duration::ZERO),
            abi_tag: slave.hello.native_abi.clone(),
            status: transfers.result.status,
            files: transfers.files.iter().map(|(f, _)| built_file(f)).collect(),
        };
        let pending = Unlogged {
            log,
            output: transfers.result.output,
        };
        if let Some(pending) = Self::write_build(pending, env) {
            if self.unlogged.len() >= MAX_UNLOGGED {
                log::error!(
                    target: target::SLAVE_DRIVER,
                    "dropping the record of {} {}: {MAX_UNLOGGED} builds already wait for the database",
                    pending.log.package,
                    pending.log.version
                );
            } else {
                self.unlogged.push(pending);
            }
        }
    }

    /// Records the build; gives it back if it must be tried again later.
    fn write_build(pending: Unlogged, env: &mut Env) -> Option<Unlogged> {
        match env.db.log_build(&pending.log) {
            Ok(build_id) => {
                let Unlogged { log, output } = pending;
                let (package, both) = (log.package, log.status);
                env.web
                    .request(WebRequest::Log { build_id, output }, env.db);
                env.web.request(
                    if both {
                        WebRequest::Both(package)
                    } else {
                        WebRequest::Project(package)
                    },
                    env.db,
                );
                None
            }
            Err(e) if e.is_unavailable() => {
                log::error!(
                    target: target::SLAVE_DRIVER,
                    "cannot record the build of {} {}: {e}; will try again",
                    pending.log.package,
                    pending.log.version
                );
                Some(pending)
            }
            Err(e) => {
                // The database refused it (a constraint, bad data from the
                // slave): trying again would fail the same way.
                log::error!(
                    target: target::SLAVE_DRIVER,
                    "the database refused the build of {} {}: {e}",
                    pending.log.package,
                    pending.log.version
                );
                None
            }
        }
    }

    /// Writes builds that could not be recorded earlier (call on a timer).
    pub fn retry_unlogged(&mut self, env: &mut Env) {
        let waiting = std::mem::take(&mut self.unlogged);
        let mut iter = waiting.into_iter();
        for pending in iter.by_ref() {
            if let Some(pending) = Self::write_build(pending, env) {
                self.unlogged.push(pending);
                break;
            }
        }
        self.unlogged.extend(iter);
    }

    /// How many builds wait for the database.
    pub fn unlogged(&self) -> usize {
        self.unlogged.len()
    }

    /// Forgets slaves that have been silent longer than their busy timeout
    /// (call every [`EXPIRY_INTERVAL`]).
    pub fn expire(&mut self, env: &mut Env) {
        let now = env.now;
        let gone: Vec<Vec<u8>> = self
            .slaves
            .iter()
            .filter(|(_, s)| s.expired(now))
            .map(|(id, _)| id.clone())
            .collect();
        for identity in gone {
            let Some(slave) = self.slaves.remove(&identity) else {
                continue;
            };
            match slave.state.job() {
                Some((package, version)) => log::warn!(
                    target: target::SLAVE_DRIVER,
                    "slave {} ({}): timed out while building {package} {version} for {}",
                    slave.id,
                    slave.hello.label,
                    slave.hello.native_abi
                ),
                None => log::warn!(
                    target: target::SLAVE_DRIVER,
                    "slave {} ({}): timed out while {}",
                    slave.id,
                    slave.hello.label,
                    slave.state.name()
                ),
            }
            env.files.abandon(slave.id);
            env.status.publish(StatusMessage::Slave(SlaveStatus::reply(
                slave.id,
                slave.last_seen,
                &SlaveReply::Die,
            )));
        }
        if !self.unlogged.is_empty() {
            self.retry_unlogged(env);
        }
    }

    /// Applies a control message to slave `id`, or to every slave for
    /// `None`. Returns how many slaves it reached.
    pub fn control(&mut self, what: SlaveControl, id: Option<u64>) -> usize {
        let mut n = 0;
        for slave in self.slaves.values_mut() {
            if id.is_some_and(|id| id != slave.id) {
                continue;
            }
            n += 1;
            match what {
                SlaveControl::Kill => slave.killed = true,
                SlaveControl::Skip => slave.skipped = true,
                SlaveControl::Sleep => slave.sleeping = true,
                SlaveControl::Wake => {
                    slave.killed = false;
                    slave.skipped = false;
                    slave.sleeping = false;
                }
            }
        }
        n
    }

    /// Replays every slave to the status feed for a new monitor: its HELLO,
    /// its stored stats and its last reply (piwheels 0.23's order).
    pub fn replay(&self, status: &mut dyn StatusSink) {
        let mut slaves: Vec<&Slave> = self.slaves.values().collect();
        slaves.sort_by_key(|s| s.id);
        for slave in slaves {
            status.publish(StatusMessage::Slave(SlaveStatus::hello(
                slave.id,
                slave.first_seen,
                &slave.hello,
            )));
            for stats in &slave.stats {
                status.publish(StatusMessage::Slave(SlaveStatus::stats(
                    slave.id,
                    slave.last_seen,
                    stats,
                )));
            }
            if let Some((utc, reply)) = &slave.last_reply {
                status.publish(StatusMessage::Slave(SlaveStatus::reply(
                    slave.id, *utc, reply,
                )));
            }
        }
    }

    /// Removes everything of the slave driver's from the picture at
    /// shutdown: transfers in flight are dropped with their temp files.
    pub fn shutdown(&mut self, files: &mut FileJuggler) {
        for slave in self.slaves.values() {
            files.abandon(slave.id);
        }
        if !self.unlogged.is_empty() {
            log::error!(
                target: target::SLAVE_DRIVER,
                "{} finished build(s) could not be recorded in the database",
                self.unlogged.len()
            );
        }
    }

    /// Marks every slave building `package` (or one version of it) to skip.
    fn skip_builds(&mut self, package: &str, version: Option<&str>) {
        for slave in self.slaves.values_mut() {
            if let Some((p, v)) = slave.state.job() {
                if p == package && version.is_none_or(|ver| ver == v) {
                    slave.skipped = true;
                }
            }
        }
    }

    /// The skip queue, with an explicit time (the [`SkipQueue`] impl uses
    /// the clock).
    pub fn exclude(&mut self, package: &str, version: Option<&str>, now: Instant) {
        self.queues.exclude(package, version, now);
        self.skip_builds(package, version);
    }
}

impl SkipQueue for SlaveDriver {
    fn skip_package(&mut self, package: &str) {
        self.exclude(package, None, Instant::now());
    }

    fn skip_version(&mut self, package: &str, version: &str) {
        self.exclude(package, Some(version), Instant::now());
    }
}

/// The per-slave control messages (KILL, SKIP, SLEEP, WAKE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaveControl {
    Kill,
    Skip,
    Sleep,
    Wake,
}

/// piwheels' armv6l rule: every linux_armv7l wheel also serves armv6l
/// (Pi Zero/1), as a copy marked already transferred, unless the build has
/// its own file of that name.
pub fn with_armv6l_copies(files: &[FileState]) -> Vec<(FileState, bool)> {
    let mut out: Vec<(FileState, bool)> = files.iter().map(|f| (f.clone(), false)).collect();
    for f in files {
        if f.platform_tag != "linux_armv7l" {
            continue;
        }
        let Some(name) = armv6l_name(&f.filename) else {
            continue;
        };
        if out.iter().any(|(g, _)| g.filename == name) {
            continue;
        }
        let mut copy = f.clone();
        copy.filename = name;
        copy.platform_tag = "linux_armv6l".into();
        out.push((copy, true));
    }
    out
}

/// A wire FileState as the database stores it.
pub fn built_file(f: &FileState) -> BuiltFile {
    BuiltFile {
        filename: f.filename.clone(),
        filesize: i64::try_from(f.filesize).unwrap_or(i64::MAX),
        filehash: f.filehash.clone(),
        package_tag: f.package_tag.clone(),
        package_version_tag: f.package_version_tag.clone(),
        py_version_tag: f.py_version_tag.clone(),
        abi_tag: f.abi_tag.clone(),
        platform_tag: f.platform_tag.clone(),
        requires_python: f.requires_python.clone(),
        location: if f.location.is_empty() {
            "/simple".into()
        } else {
            f.location.clone()
        },
        // The database allows only these tools; anything else is a broken
        // or hostile slave and would make the whole build unrecordable.
        dependencies: f
            .dependencies
            .iter()
            .filter(|(tool, _)| matches!(tool.as_str(), "apt" | "pip" | ""))
            .flat_map(|(tool, deps)| deps.iter().map(move |d| (tool.clone(), d.clone())))
            .collect(),
    }
}
