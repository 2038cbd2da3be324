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

pub mod lumberjack;
mod sockets;
pub mod tasks;
pub mod timers;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::config::master::MasterConfig;
use crate::logging::target;
use crate::protocol::{ControlMessage, DecodeError, MasterHello, StatusMessage, WireMessage};
use crate::signals::{Signal, SignalFd};
use crate::systemd::Notifier;
pub use sockets::Sockets;
use timers::{Timer, Timers};

/// At most this many messages are taken from one socket per loop turn, so a
/// flood on one socket cannot starve the others or the timers.
const BATCH: usize = 100;

/// The longest `zmq::poll` sleeps even with no timer due.
const MAX_POLL: Duration = Duration::from_secs(60);

/// How often free space on the output path is checked (piwheels checks on
/// every 5 s main-loop cycle).
const DISK_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// At or below this much free space the master pauses itself, once.
const DISK_LOW_WATER: u64 = 1 << 30;

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

/// The running master: every task's state and the sockets they talk on.
pub struct Master {
    config: MasterConfig,
    sockets: Sockets,
    signals: SignalFd,
    notifier: Notifier,
    timers: Timers,
    /// The HELLO published to every monitor that says HELLO.
    hello: MasterHello,
    /// The whole master is paused (control `SLEEP null`, or the disk guard).
    paused: bool,
    /// The disk guard fires once per run, as in piwheels; a WAKE from a
    /// monitor resumes.
    disk_guard_fired: bool,
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
        let sockets = Sockets::bind(&config).map_err(|e| MasterError(e.to_string()))?;
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
        Ok(Master {
            config,
            sockets,
            signals,
            notifier,
            timers,
            hello,
            paused: false,
            disk_guard_fired: false,
        })
    }

    /// Runs the poll loop until QUIT or a signal, then shuts down in order.
    pub fn run(mut self) -> Result<Stop, MasterError> {
        log::info!(target: target::MASTER, "PiWheels Master version {}", crate::VERSION);
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
            let timeout = self.timers.poll_timeout_ms(Instant::now(), MAX_POLL);
            let (sig_ready, control_ready) = {
                let mut items = [
                    zmq::PollItem::from_fd(self.signals.raw_fd(), zmq::POLLIN),
                    self.sockets.control.as_poll_item(zmq::POLLIN),
                ];
                match zmq::poll(&mut items, timeout) {
                    Ok(_) => {}
                    Err(zmq::Error::EINTR) => continue,
                    Err(e) => return Err(MasterError(format!("poll failed: {e}"))),
                }
                (items[0].is_readable(), items[1].is_readable())
            };
            if sig_ready {
                if let Some(stop) = self.on_signals() {
                    return Ok(stop);
                }
            }
            if control_ready {
                if let Some(stop) = self.drain_control() {
                    return Ok(stop);
                }
            }
            let now = Instant::now();
            while let Some(timer) = self.timers.pop_due(now) {
                self.on_timer(timer);
            }
        }
    }

    fn on_signals(&mut self) -> Option<Stop> {
        loop {
            match self.signals.read() {
                Ok(Some(Signal::Term | Signal::Int)) => return Some(Stop::Signal),
                Ok(Some(Signal::Hup)) => {
                    log::info!(target: target::MASTER, "SIGHUP received; nothing to reload");
                }
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
        match msg {
            ControlMessage::Quit => return Some(Stop::Quit),
            ControlMessage::Hello => {
                log::warn!(target: target::MASTER, "sending status to new monitor");
                let hello = StatusMessage::Hello(self.hello.clone());
                self.publish(&hello);
            }
            ControlMessage::Sleep(None) => self.pause("SLEEP from a monitor"),
            ControlMessage::Wake(None) => self.resume(),
            ControlMessage::Sleep(Some(id))
            | ControlMessage::Wake(Some(id))
            | ControlMessage::Kill(Some(id))
            | ControlMessage::Skip(Some(id)) => {
                log::warn!(target: target::MASTER, "no slave with id {id}");
            }
            ControlMessage::Kill(None) | ControlMessage::Skip(None) => {
                log::warn!(target: target::MASTER, "no slaves connected");
            }
        }
        None
    }

    fn pause(&mut self, why: &str) {
        if !self.paused {
            log::warn!(target: target::MASTER, "pausing operations ({why})");
            self.paused = true;
            self.notifier.status(&format!("paused: {why}"));
        }
    }

    fn resume(&mut self) {
        if self.paused {
            log::warn!(target: target::MASTER, "resuming operations");
            self.paused = false;
            self.notifier.status("running");
        }
    }

    fn on_timer(&mut self, timer: Timer) {
        match timer {
            Timer::Watchdog => self.notifier.watchdog_ping(),
            Timer::DiskCheck => self.check_disk(),
        }
    }

    /// piwheels 0.23 pauses everything, once, when the output path is nearly
    /// full; a monitor's WAKE resumes.
    fn check_disk(&mut self) {
        if self.disk_guard_fired {
            return;
        }
        match crate::info::disk_usage(&self.config.output_path) {
            Ok((_, free)) if free <= DISK_LOW_WATER => {
                self.disk_guard_fired = true;
                let why = format!(
                    "only {} MiB free on {}",
                    free >> 20,
                    self.config.output_path.display()
                );
                log::error!(target: target::MASTER, "disk space low: {why}; pausing until a monitor sends WAKE");
                self.pause(&why);
            }
            Ok(_) => {}
            Err(e) => log::debug!(
                target: target::MASTER,
                "cannot check free space on {}: {e}",
                self.config.output_path.display()
            ),
        }
    }

    /// Sends a message to every monitor. PUB never blocks: with no
    /// subscriber, or a slow one past its HWM, messages are dropped, which is
    /// what monitors expect (they ask for a replay with HELLO).
    fn publish(&self, msg: &StatusMessage) {
        if let Err(e) = self.sockets.status.send(msg.encode(), zmq::DONTWAIT) {
            log::debug!(target: target::MASTER, "status queue: {e}");
        }
    }

    fn shutdown(self) {
        self.notifier.extend_timeout(Duration::from_secs(10));
        // Sockets close (with their 1 s linger) and the context terminates
        // as they drop.
        drop(self.sockets);
        log::info!(target: target::MASTER, "closed all queues");
    }

    /// Whether the master is paused (for tests and the status line).
    pub fn is_paused(&self) -> bool {
        self.paused
    }
}

/// Now, in UTC, at microsecond precision (what piwheels' clocks carry).
pub fn now_utc() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}
