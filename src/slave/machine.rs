//! The slave protocol as the slave sees it: a sans-IO state machine.
//!
//! Events go in ([`Event`], or [`Machine::tick`] when a deadline passes);
//! [`Action`]s come out, for the I/O shell in [`super`] to carry out. The
//! machine never touches a socket, a process or the clock: the shell
//! passes `now` in and asks [`Machine::next_deadline`] how long it may
//! sleep. So every transition is a plain function call in the tests.
//!
//! The conversation (piwheels 0.23, section 3.1 and 8.4 of the protocol
//! notes):
//!
//! ```text
//! HELLO → ACK        → IDLE
//! IDLE  → SLEEP b    → (5–10 s) → IDLE
//! IDLE  → BUILD p v  → start the build → BUSY
//! BUSY  → CONT       → wait up to 5–10 s for the build → BUILT, or BUSY again
//! BUSY  → DONE       → abandon the build (SIGTERM, SIGKILL after 10 s) → IDLE
//! BUILT → SEND f     → transfer f on the file queue → SENT
//! SENT  → SEND f     → the next file …
//! BUILT/SENT → DONE  → remove the build → IDLE
//! any   → DIE        → BYE, stop any build, exit 0
//! ```
//!
//! Where piwheels' slave asserts (and so crashes), this one resets: a
//! reply that makes no sense in the current state (ACK twice, SEND of a
//! file it did not build, CONT when idle, anything undecodable) is logged,
//! any build is stopped and thrown away, and the slave reconnects with a
//! fresh HELLO. So does master silence: no reply within the master timeout
//! (5 min) to any request.

use std::time::{Duration, Instant};

use crate::protocol::{BuildResult, SlaveReply};

/// The slave's clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// No reply for this long resets the connection (piwheels: 5 min). It
    /// is also the busy timeout the slave announces in HELLO.
    pub master: Duration,
    /// SLEEP back-off range (piwheels 0.23: 5–10 s).
    pub sleep: (Duration, Duration),
    /// How long to wait for the build after CONT before sending BUSY again
    /// (piwheels 0.23: 5–10 s).
    pub cont: (Duration, Duration),
    /// An abandoned build that has not stopped after this long is fatal
    /// (piwheels: 1 min).
    pub stop: Duration,
}

impl Timeouts {
    /// piwheels' intervals for a given master timeout. The back-off and
    /// the BUSY cadence are capped at half the master timeout, so a slave
    /// configured with a short one (in tests) still talks often enough not
    /// to be expired by its master.
    pub fn with_master_timeout(master: Duration) -> Timeouts {
        let cap = |d: Duration| d.min(master / 2);
        let five = Duration::from_secs(5);
        let ten = Duration::from_secs(10);
        Timeouts {
            master,
            sleep: (cap(five), cap(ten)),
            cont: (cap(five), cap(ten)),
            stop: Duration::from_secs(60),
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::with_master_timeout(Duration::from_secs(300))
    }
}

/// A request for the shell to send; it adds the HELLO record and fresh
/// statistics to `Hello`, `Idle` and `Busy`.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Hello,
    Idle,
    Busy,
    Built(BuildResult),
    Sent,
    Bye,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Close the connection to the slave queue, if any, and open a new one
    /// (a new socket, so a new identity on the master).
    Connect,
    /// Send a request on the slave queue.
    Send(Request),
    /// Start building; report [`Event::BuildFinished`] when done.
    StartBuild {
        package: String,
        version: String,
        /// The index URL from ACK.
        index_url: String,
    },
    /// Stop the running build (SIGTERM, SIGKILL after a grace period) and
    /// report [`Event::BuildStopped`] once it has stopped.
    StopBuild,
    /// Remove everything the last build left (its wheels and log).
    DiscardBuild,
    /// Transfer a file of the finished build on a new file-queue socket;
    /// report [`Event::TransferDone`] or [`Event::TransferFailed`].
    StartTransfer { filename: String },
    /// Give up the transfer in progress, if any.
    AbortTransfer,
    /// Close everything and exit with this status.
    Exit(i32),
}

/// Something that happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The shell is ready: say HELLO.
    Start,
    /// A reply from the master.
    Reply(SlaveReply),
    /// A reply that did not decode (the error, for the log).
    BadReply(String),
    /// The build ended by itself (success, failure or its timeout).
    BuildFinished(BuildResult),
    /// A build we asked to stop has stopped.
    BuildStopped,
    /// The master said DONE on the file queue.
    TransferDone,
    /// The transfer could not go on (the reason, for the log).
    TransferFailed(String),
    /// SIGTERM or SIGINT.
    Terminate,
}

/// Where the conversation is.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Not started.
    Init,
    /// HELLO sent.
    AwaitAck { since: Instant },
    /// IDLE sent.
    AwaitIdleReply { since: Instant },
    /// SLEEP received; IDLE goes out at `until`.
    Sleeping { until: Instant },
    /// BUSY sent.
    AwaitBusyReply { since: Instant },
    /// CONT received: waiting for the build until `until`, then BUSY.
    Waiting { until: Instant },
    /// BUILT sent.
    AwaitBuiltReply { since: Instant },
    /// SEND received: transferring `filename`.
    Transferring { filename: String },
    /// SENT sent.
    AwaitSentReply { since: Instant },
    /// Waiting for an abandoned build to stop, then doing `then`.
    Stopping { since: Instant, then: After },
    /// Finished with this exit status.
    Exited(i32),
}

/// What follows once an abandoned build has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Send IDLE (the master said DONE to BUSY).
    Idle,
    /// Reconnect with HELLO (master silence or a protocol error).
    Reconnect,
    /// Exit 0 (DIE, SIGTERM).
    Exit,
}

/// The build, as far as the protocol cares.
#[derive(Debug, Clone, PartialEq)]
pub enum Build {
    None,
    Running,
    Finished(BuildResult),
}

/// A small, seedable generator for the random back-offs (SplitMix64).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi]`, to the millisecond.
    fn between(&mut self, (lo, hi): (Duration, Duration)) -> Duration {
        let (lo_ms, hi_ms) = (
            lo.as_millis() as u64,
            hi.as_millis().max(lo.as_millis()) as u64,
        );
        Duration::from_millis(lo_ms + self.next() % (hi_ms - lo_ms + 1))
    }
}

/// The slave's side of the protocol.
#[derive(Debug, Clone)]
pub struct Machine {
    state: State,
    build: Build,
    slave_id: Option<u64>,
    index_url: String,
    timeouts: Timeouts,
    rng: Rng,
    bye_sent: bool,
    log_target: String,
}

impl Machine {
    /// A machine with these timeouts; `seed` drives the random back-offs.
    pub fn new(timeouts: Timeouts, seed: u64) -> Machine {
        Machine {
            state: State::Init,
            build: Build::None,
            slave_id: None,
            index_url: String::new(),
            timeouts,
            rng: Rng(seed),
            bye_sent: false,
            log_target: "slave".to_string(),
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn build(&self) -> &Build {
        &self.build
    }

    /// The id from the last ACK, while connected.
    pub fn slave_id(&self) -> Option<u64> {
        self.slave_id
    }

    /// The log target: `slave` before ACK, `slave-<id>` after, as piwheels
    /// names its logger.
    pub fn log_target(&self) -> &str {
        &self.log_target
    }

    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Has the machine finished (and with what status)?
    pub fn exit_status(&self) -> Option<i32> {
        match self.state {
            State::Exited(code) => Some(code),
            _ => None,
        }
    }

    /// Is a request waiting for its reply (so a reply may arrive)?
    pub fn awaiting_reply(&self) -> bool {
        self.request_sent().is_some()
    }

    fn request_sent(&self) -> Option<Instant> {
        match self.state {
            State::AwaitAck { since }
            | State::AwaitIdleReply { since }
            | State::AwaitBusyReply { since }
            | State::AwaitBuiltReply { since }
            | State::AwaitSentReply { since } => Some(since),
            _ => None,
        }
    }

    /// When [`tick`](Self::tick) must next be called, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        if let Some(since) = self.request_sent() {
            return Some(since + self.timeouts.master);
        }
        match self.state {
            State::Sleeping { until } | State::Waiting { until } => Some(until),
            State::Stopping { since, .. } => Some(since + self.timeouts.stop),
            _ => None,
        }
    }

    /// Handles one event.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if matches!(self.state, State::Exited(_)) {
            return out;
        }
        match event {
            Event::Start => self.on_start(now, &mut out),
            Event::Reply(reply) => self.on_reply(reply, now, &mut out),
            Event::BadReply(why) => {
                self.violation(&format!("invalid reply from master: {why}"), now, &mut out)
            }
            Event::BuildFinished(result) => self.on_build_finished(result, now, &mut out),
            Event::BuildStopped => self.on_build_stopped(now, &mut out),
            Event::TransferDone => match self.state {
                State::Transferring { .. } => self.send(Request::Sent, now, &mut out),
                _ => {
                    log::warn!(target: &self.log_target, "transfer finished when none was running")
                }
            },
            Event::TransferFailed(why) => {
                if matches!(self.state, State::Transferring { .. }) {
                    log::error!(target: &self.log_target, "file transfer failed: {why}");
                    self.reset(now, &mut out);
                }
            }
            Event::Terminate => {
                log::warn!(target: &self.log_target, "Shutting down on signal");
                self.terminate(now, &mut out);
            }
        }
        out
    }

    /// Handles the passing of time: call when [`next_deadline`]
    /// (Self::next_deadline) has passed (calling early is harmless).
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(deadline) = self.next_deadline() else {
            return out;
        };
        if now < deadline {
            return out;
        }
        match self.state {
            State::Sleeping { .. } => self.send(Request::Idle, now, &mut out),
            State::Waiting { .. } => self.send(Request::Busy, now, &mut out),
            State::Stopping { .. } => {
                log::error!(target: &self.log_target, "Build failed to terminate");
                self.state = State::Exited(1);
                out.push(Action::Exit(1));
            }
            _ => {
                log::warn!(target: &self.log_target, "Timed out waiting for master");
                self.reset(now, &mut out);
            }
        }
        out
    }

    /// Sends a request and waits for its reply (BYE, which gets none, is
    /// sent by [`terminate`](Self::terminate) without a state change).
    fn send(&mut self, req: Request, now: Instant, out: &mut Vec<Action>) {
        match req {
            Request::Hello => self.state = State::AwaitAck { since: now },
            Request::Idle => self.state = State::AwaitIdleReply { since: now },
            Request::Busy => self.state = State::AwaitBusyReply { since: now },
            Request::Built(_) => self.state = State::AwaitBuiltReply { since: now },
            Request::Sent => self.state = State::AwaitSentReply { since: now },
            Request::Bye => {}
        }
        out.push(Action::Send(req));
    }

    fn connect(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.slave_id = None;
        self.log_target = "slave".to_string();
        self.bye_sent = false;
        out.push(Action::Connect);
        self.send(Request::Hello, now, out);
    }

    fn on_start(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state == State::Init {
            self.connect(now, out);
        }
    }

    fn on_reply(&mut self, reply: SlaveReply, now: Instant, out: &mut Vec<Action>) {
        if !self.awaiting_reply() {
            return self.violation(
                &format!(
                    "unexpected {} with no request outstanding",
                    reply_name(&reply)
                ),
                now,
                out,
            );
        }
        match (&self.state, reply) {
            (_, SlaveReply::Die) => {
                log::warn!(target: &self.log_target, "Master requested termination");
                self.terminate(now, out);
            }
            (State::AwaitAck { .. }, SlaveReply::Ack { slave_id, pypi_url }) => {
                self.slave_id = Some(slave_id);
                self.index_url = pypi_url;
                self.log_target = format!("slave-{slave_id}");
                log::info!(target: &self.log_target, "Connected to master");
                self.send(Request::Idle, now, out);
            }
            (State::AwaitIdleReply { .. }, SlaveReply::Sleep { paused }) => {
                let pause = self.rng.between(self.timeouts.sleep);
                if paused {
                    log::info!(target: &self.log_target, "Sleeping: paused");
                } else {
                    log::info!(target: &self.log_target, "Sleeping: no available jobs");
                }
                self.state = State::Sleeping { until: now + pause };
            }
            (State::AwaitIdleReply { .. }, SlaveReply::Build { package, version }) => {
                log::warn!(
                    target: &self.log_target,
                    "Building package {package} version {version}"
                );
                self.build = Build::Running;
                out.push(Action::StartBuild {
                    package,
                    version,
                    index_url: self.index_url.clone(),
                });
                self.send(Request::Busy, now, out);
            }
            (State::AwaitBusyReply { .. }, SlaveReply::Cont) => match &self.build {
                Build::Finished(result) => {
                    let result = result.clone();
                    self.report(result, now, out);
                }
                _ => {
                    let wait = self.rng.between(self.timeouts.cont);
                    self.state = State::Waiting { until: now + wait };
                }
            },
            (State::AwaitBusyReply { .. }, SlaveReply::Done) => {
                log::warn!(target: &self.log_target, "Master asked to abandon the build");
                self.abandon(After::Idle, now, out);
            }
            (
                State::AwaitBuiltReply { .. } | State::AwaitSentReply { .. },
                SlaveReply::Send { filename },
            ) => {
                let known = match &self.build {
                    Build::Finished(r) => {
                        r.status && r.files.iter().any(|f| f.filename == filename)
                    }
                    _ => false,
                };
                if known {
                    self.state = State::Transferring {
                        filename: filename.clone(),
                    };
                    out.push(Action::StartTransfer { filename });
                } else {
                    self.violation(
                        &format!("master asked for {filename:?}, which this build did not produce"),
                        now,
                        out,
                    );
                }
            }
            (State::AwaitBuiltReply { .. } | State::AwaitSentReply { .. }, SlaveReply::Done) => {
                log::info!(target: &self.log_target, "Removing temporary build directories");
                self.build = Build::None;
                out.push(Action::DiscardBuild);
                self.send(Request::Idle, now, out);
            }
            (state, reply) => {
                let what = format!(
                    "unexpected {} in state {}",
                    reply_name(&reply),
                    state_name(state)
                );
                self.violation(&what, now, out);
            }
        }
    }

    /// Sends BUILT with the build's outcome.
    fn report(&mut self, result: BuildResult, now: Instant, out: &mut Vec<Action>) {
        if result.status {
            log::info!(target: &self.log_target, "Build succeeded");
        } else {
            log::warn!(target: &self.log_target, "Build failed");
        }
        self.send(Request::Built(result), now, out);
    }

    fn on_build_finished(&mut self, result: BuildResult, now: Instant, out: &mut Vec<Action>) {
        if self.build != Build::Running {
            log::warn!(target: &self.log_target, "a build finished that was not running");
            return;
        }
        match self.state {
            State::Stopping { .. } => self.on_build_stopped(now, out),
            State::Waiting { .. } => {
                self.build = Build::Finished(result.clone());
                self.report(result, now, out);
            }
            _ => self.build = Build::Finished(result),
        }
    }

    fn on_build_stopped(&mut self, now: Instant, out: &mut Vec<Action>) {
        let State::Stopping { then, .. } = self.state else {
            log::warn!(target: &self.log_target, "a build stopped that was not being stopped");
            return;
        };
        self.build = Build::None;
        out.push(Action::DiscardBuild);
        self.then(then, now, out);
    }

    fn then(&mut self, then: After, now: Instant, out: &mut Vec<Action>) {
        match then {
            After::Idle => self.send(Request::Idle, now, out),
            After::Reconnect => self.connect(now, out),
            After::Exit => {
                self.state = State::Exited(0);
                out.push(Action::Exit(0));
            }
        }
    }

    /// Gives up any transfer and build: a running build is stopped (and
    /// `then` waits for [`Event::BuildStopped`]); a finished one is thrown
    /// away and `then` happens at once.
    fn abandon(&mut self, then: After, now: Instant, out: &mut Vec<Action>) {
        if let State::Transferring { .. } = self.state {
            out.push(Action::AbortTransfer);
        }
        match self.build {
            Build::Running => {
                log::info!(target: &self.log_target, "Terminating current build");
                out.push(Action::StopBuild);
                self.state = State::Stopping { since: now, then };
            }
            Build::Finished(_) => {
                log::info!(target: &self.log_target, "Removing temporary build directories");
                self.build = Build::None;
                out.push(Action::DiscardBuild);
                self.then(then, now, out);
            }
            Build::None => self.then(then, now, out),
        }
    }

    /// Protocol error or master silence: start again with a new
    /// connection and a new HELLO, after stopping any build.
    fn reset(&mut self, now: Instant, out: &mut Vec<Action>) {
        log::warn!(target: &self.log_target, "Resetting connection");
        self.abandon(After::Reconnect, now, out);
    }

    fn violation(&mut self, what: &str, now: Instant, out: &mut Vec<Action>) {
        log::error!(target: &self.log_target, "protocol error: {what}");
        if let State::Stopping { .. } = self.state {
            // Already on the way out or back; the stop decides what next.
            return;
        }
        self.reset(now, out);
    }

    /// DIE or a signal: say BYE (once), stop any build, exit 0.
    fn terminate(&mut self, now: Instant, out: &mut Vec<Action>) {
        if !self.bye_sent && self.state != State::Init {
            out.push(Action::Send(Request::Bye));
            self.bye_sent = true;
        }
        match self.state {
            State::Stopping { ref mut then, .. } => *then = After::Exit,
            State::Init => {
                self.state = State::Exited(0);
                out.push(Action::Exit(0));
            }
            _ => self.abandon(After::Exit, now, out),
        }
    }
}

fn reply_name(r: &SlaveReply) -> &'static str {
    use crate::protocol::WireMessage;
    r.name()
}

fn state_name(s: &State) -> &'static str {
    match s {
        State::Init => "init",
        State::AwaitAck { .. } => "HELLO sent",
        State::AwaitIdleReply { .. } => "IDLE sent",
        State::Sleeping { .. } => "sleeping",
        State::AwaitBusyReply { .. } => "BUSY sent",
        State::Waiting { .. } => "building",
        State::AwaitBuiltReply { .. } => "BUILT sent",
        State::Transferring { .. } => "transferring",
        State::AwaitSentReply { .. } => "SENT sent",
        State::Stopping { .. } => "stopping a build",
        State::Exited(_) => "exited",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{FileState, TimeDelta};

    const SEC: Duration = Duration::from_secs(1);

    fn file(name: &str) -> FileState {
        FileState {
            filename: name.into(),
            filesize: 10,
            filehash: "00".repeat(32),
            package_tag: "foo".into(),
            package_version_tag: "1.0".into(),
            py_version_tag: "py3".into(),
            abi_tag: "none".into(),
            platform_tag: "any".into(),
            requires_python: None,
            dependencies: vec![
                ("apt".into(), vec![]),
                ("pip".into(), vec![]),
                ("".into(), vec![]),
            ],
            location: "/simple".into(),
        }
    }

    fn result(status: bool, files: &[&str]) -> BuildResult {
        BuildResult {
            status,
            duration: TimeDelta::from_secs(1).unwrap(),
            output: "log".into(),
            files: files.iter().map(|f| file(f)).collect(),
        }
    }

    /// A machine with a clock.
    struct T {
        m: Machine,
        now: Instant,
    }

    impl T {
        fn new() -> T {
            T {
                m: Machine::new(Timeouts::default(), 42),
                now: Instant::now(),
            }
        }

        fn ev(&mut self, e: Event) -> Vec<Action> {
            self.m.handle(e, self.now)
        }

        fn reply(&mut self, r: SlaveReply) -> Vec<Action> {
            self.ev(Event::Reply(r))
        }

        fn advance(&mut self, d: Duration) -> Vec<Action> {
            self.now += d;
            self.m.tick(self.now)
        }

        /// Runs until the next deadline.
        fn until_deadline(&mut self) -> Vec<Action> {
            let d = self.m.next_deadline().expect("a deadline");
            self.now = d;
            self.m.tick(self.now)
        }

        fn connected() -> T {
            let mut t = T::new();
            assert_eq!(
                t.ev(Event::Start),
                [Action::Connect, Action::Send(Request::Hello)]
            );
            assert_eq!(
                t.reply(SlaveReply::Ack {
                    slave_id: 7,
                    pypi_url: "http://idx/simple".into()
                }),
                [Action::Send(Request::Idle)]
            );
            t
        }

        fn building() -> T {
            let mut t = T::connected();
            assert_eq!(
                t.reply(SlaveReply::Build {
                    package: "foo".into(),
                    version: "1.0".into()
                }),
                [
                    Action::StartBuild {
                        package: "foo".into(),
                        version: "1.0".into(),
                        index_url: "http://idx/simple".into()
                    },
                    Action::Send(Request::Busy)
                ]
            );
            t
        }

        /// BUILT sent for a build of `files`.
        fn built(files: &[&str]) -> T {
            let mut t = T::building();
            assert!(t.ev(Event::BuildFinished(result(true, files))).is_empty());
            assert_eq!(
                t.reply(SlaveReply::Cont),
                [Action::Send(Request::Built(result(true, files)))]
            );
            t
        }

        fn reconnects(actions: &[Action]) -> bool {
            actions.ends_with(&[Action::Connect, Action::Send(Request::Hello)])
        }
    }

    #[test]
    fn hello_ack_idle() {
        let mut t = T::new();
        assert_eq!(t.m.state(), &State::Init);
        assert_eq!(t.m.next_deadline(), None);
        assert_eq!(t.m.log_target(), "slave");
        t = T::connected();
        assert_eq!(t.m.slave_id(), Some(7));
        assert_eq!(t.m.log_target(), "slave-7");
        assert!(matches!(t.m.state(), State::AwaitIdleReply { .. }));
        // A second Start does nothing.
        assert!(t.ev(Event::Start).is_empty());
    }

    #[test]
    fn sleep_backs_off_five_to_ten_seconds_then_idles() {
        for paused in [false, true] {
            let mut t = T::connected();
            assert!(t.reply(SlaveReply::Sleep { paused }).is_empty());
            let State::Sleeping { until } = *t.m.state() else {
                panic!("{:?}", t.m.state())
            };
            let pause = until - t.now;
            assert!(pause >= 5 * SEC && pause <= 10 * SEC, "{pause:?}");
            assert!(t.advance(pause - Duration::from_millis(1)).is_empty());
            assert_eq!(
                t.advance(Duration::from_millis(1)),
                [Action::Send(Request::Idle)]
            );
        }
    }

    #[test]
    fn back_offs_vary_and_stay_in_range() {
        let mut rng = Rng(1);
        let range = (5 * SEC, 10 * SEC);
        let picks: Vec<Duration> = (0..200).map(|_| rng.between(range)).collect();
        assert!(picks.iter().all(|d| *d >= range.0 && *d <= range.1));
        assert!(picks.iter().any(|d| *d < 6 * SEC) && picks.iter().any(|d| *d > 9 * SEC));
        assert_eq!(Rng(1).between((SEC, SEC)), SEC);
    }

    #[test]
    fn short_master_timeouts_cap_the_back_offs() {
        let t = Timeouts::with_master_timeout(4 * SEC);
        assert_eq!(t.sleep, (2 * SEC, 2 * SEC));
        assert_eq!(t.cont, (2 * SEC, 2 * SEC));
        let t = Timeouts::default();
        assert_eq!(t.master, 300 * SEC);
        assert_eq!(t.sleep, (5 * SEC, 10 * SEC));
        assert_eq!(t.stop, 60 * SEC);
    }

    #[test]
    fn busy_cont_until_the_build_finishes() {
        let mut t = T::building();
        assert_eq!(t.m.build(), &Build::Running);
        // CONT while building: wait 5-10 s for it, then BUSY again.
        assert!(t.reply(SlaveReply::Cont).is_empty());
        let State::Waiting { until } = *t.m.state() else {
            panic!()
        };
        assert!(until - t.now >= 5 * SEC && until - t.now <= 10 * SEC);
        assert_eq!(t.until_deadline(), [Action::Send(Request::Busy)]);
        assert!(t.reply(SlaveReply::Cont).is_empty());
        // The build finishes while waiting: BUILT at once.
        t.now += SEC;
        assert_eq!(
            t.ev(Event::BuildFinished(result(true, &["a.whl"]))),
            [Action::Send(Request::Built(result(true, &["a.whl"])))]
        );
        assert!(matches!(t.m.state(), State::AwaitBuiltReply { .. }));
    }

    #[test]
    fn a_build_that_finishes_before_cont_is_reported_on_cont() {
        let t = T::built(&["a.whl"]);
        assert!(matches!(t.m.state(), State::AwaitBuiltReply { .. }));
    }

    #[test]
    fn send_sent_done_idle() {
        let mut t = T::built(&["b.whl", "a.whl"]);
        for f in ["a.whl", "b.whl"] {
            assert_eq!(
                t.reply(SlaveReply::Send { filename: f.into() }),
                [Action::StartTransfer { filename: f.into() }]
            );
            assert_eq!(t.m.state(), &State::Transferring { filename: f.into() });
            // No reply can be due while transferring; the transfer has its
            // own clock.
            assert_eq!(t.m.next_deadline(), None);
            assert_eq!(t.ev(Event::TransferDone), [Action::Send(Request::Sent)]);
        }
        // A retry of a file is fine too.
        assert_eq!(
            t.reply(SlaveReply::Send {
                filename: "a.whl".into()
            }),
            [Action::StartTransfer {
                filename: "a.whl".into()
            }]
        );
        assert_eq!(t.ev(Event::TransferDone), [Action::Send(Request::Sent)]);
        assert_eq!(
            t.reply(SlaveReply::Done),
            [Action::DiscardBuild, Action::Send(Request::Idle)]
        );
        assert_eq!(t.m.build(), &Build::None);
    }

    #[test]
    fn failed_build_gets_done() {
        let mut t = T::building();
        t.ev(Event::BuildFinished(result(false, &[])));
        assert_eq!(
            t.reply(SlaveReply::Cont),
            [Action::Send(Request::Built(result(false, &[])))]
        );
        assert_eq!(
            t.reply(SlaveReply::Done),
            [Action::DiscardBuild, Action::Send(Request::Idle)]
        );
    }

    #[test]
    fn done_while_building_abandons_the_build() {
        let mut t = T::building();
        assert_eq!(t.reply(SlaveReply::Done), [Action::StopBuild]);
        assert!(matches!(
            t.m.state(),
            State::Stopping {
                then: After::Idle,
                ..
            }
        ));
        // A build that finishes on its own while being stopped counts as
        // stopped.
        assert_eq!(
            t.ev(Event::BuildFinished(result(true, &["a.whl"]))),
            [Action::DiscardBuild, Action::Send(Request::Idle)]
        );
        assert_eq!(t.m.build(), &Build::None);

        let mut t = T::building();
        t.reply(SlaveReply::Done);
        assert_eq!(
            t.ev(Event::BuildStopped),
            [Action::DiscardBuild, Action::Send(Request::Idle)]
        );
    }

    #[test]
    fn done_after_the_build_finished_discards_it() {
        let mut t = T::building();
        t.ev(Event::BuildFinished(result(true, &["a.whl"])));
        assert_eq!(
            t.reply(SlaveReply::Done),
            [Action::DiscardBuild, Action::Send(Request::Idle)]
        );
    }

    #[test]
    fn a_build_that_will_not_stop_is_fatal() {
        let mut t = T::building();
        t.reply(SlaveReply::Done);
        assert!(t.advance(59 * SEC).is_empty());
        assert_eq!(t.advance(SEC), [Action::Exit(1)]);
        assert_eq!(t.m.exit_status(), Some(1));
        // Nothing happens after exit.
        assert!(t.ev(Event::BuildStopped).is_empty());
        assert!(t.advance(100 * SEC).is_empty());
    }

    #[test]
    fn die_in_every_waiting_state() {
        let states: Vec<fn() -> T> = vec![
            || {
                let mut t = T::new();
                t.ev(Event::Start);
                t
            },
            T::connected,
            || {
                let mut t = T::connected();
                t.reply(SlaveReply::Sleep { paused: false });
                t.until_deadline();
                t
            },
            || {
                let mut t = T::built(&["a.whl"]);
                t.reply(SlaveReply::Send {
                    filename: "a.whl".into(),
                });
                t.ev(Event::TransferDone);
                t
            },
            || T::built(&["a.whl"]),
        ];
        for make in states {
            let mut t = make();
            let had_build = matches!(t.m.build(), Build::Finished(_));
            let mut want = vec![Action::Send(Request::Bye)];
            if had_build {
                want.push(Action::DiscardBuild);
            }
            want.push(Action::Exit(0));
            assert_eq!(t.reply(SlaveReply::Die), want);
            assert_eq!(t.m.exit_status(), Some(0));
        }
    }

    #[test]
    fn die_while_building_stops_the_build_first() {
        let mut t = T::building();
        assert_eq!(
            t.reply(SlaveReply::Die),
            [Action::Send(Request::Bye), Action::StopBuild]
        );
        assert_eq!(t.m.exit_status(), None);
        assert_eq!(
            t.ev(Event::BuildStopped),
            [Action::DiscardBuild, Action::Exit(0)]
        );
    }

    #[test]
    fn sigterm_in_any_state() {
        // Before connecting: just exit.
        let mut t = T::new();
        assert_eq!(t.ev(Event::Terminate), [Action::Exit(0)]);
        // Sleeping (no request outstanding): BYE still goes out.
        let mut t = T::connected();
        t.reply(SlaveReply::Sleep { paused: true });
        assert_eq!(
            t.ev(Event::Terminate),
            [Action::Send(Request::Bye), Action::Exit(0)]
        );
        // Waiting for a build: BYE, stop it, then exit.
        let mut t = T::building();
        t.reply(SlaveReply::Cont);
        assert_eq!(
            t.ev(Event::Terminate),
            [Action::Send(Request::Bye), Action::StopBuild]
        );
        // A second signal changes nothing.
        assert!(t.ev(Event::Terminate).is_empty());
        assert_eq!(
            t.ev(Event::BuildStopped),
            [Action::DiscardBuild, Action::Exit(0)]
        );
        // Transferring: abort it.
        let mut t = T::built(&["a.whl"]);
        t.reply(SlaveReply::Send {
            filename: "a.whl".into(),
        });
        assert_eq!(
            t.ev(Event::Terminate),
            [
                Action::Send(Request::Bye),
                Action::AbortTransfer,
                Action::DiscardBuild,
                Action::Exit(0)
            ]
        );
    }

    #[test]
    fn sigterm_while_resetting_exits_after_the_stop() {
        let mut t = T::building();
        let a = t.advance(300 * SEC);
        assert_eq!(a, [Action::StopBuild]);
        assert_eq!(t.ev(Event::Terminate), [Action::Send(Request::Bye)]);
        assert_eq!(
            t.ev(Event::BuildStopped),
            [Action::DiscardBuild, Action::Exit(0)]
        );
    }

    #[test]
    fn master_silence_reconnects_in_every_waiting_state() {
        // HELLO, IDLE, BUSY, BUILT, SENT all time out after 5 min.
        let mut t = T::new();
        t.ev(Event::Start);
        assert_eq!(t.m.next_deadline(), Some(t.now + 300 * SEC));
        assert!(t.advance(299 * SEC).is_empty());
        assert!(T::reconnects(&t.advance(SEC)));
        assert_eq!(t.m.slave_id(), None);

        let mut t = T::connected();
        assert!(T::reconnects(&t.advance(300 * SEC)));
        assert_eq!(t.m.slave_id(), None);
        assert_eq!(t.m.log_target(), "slave");

        // BUSY outstanding with a running build: stop it, then reconnect.
        let mut t = T::building();
        assert_eq!(t.advance(300 * SEC), [Action::StopBuild]);
        let a = t.ev(Event::BuildStopped);
        assert_eq!(a[0], Action::DiscardBuild);
        assert!(T::reconnects(&a));

        // BUILT / SENT outstanding: the finished build is thrown away.
        let mut t = T::built(&["a.whl"]);
        assert_eq!(
            t.advance(300 * SEC),
            [
                Action::DiscardBuild,
                Action::Connect,
                Action::Send(Request::Hello)
            ]
        );
        let mut t = T::built(&["a.whl"]);
        t.reply(SlaveReply::Send {
            filename: "a.whl".into(),
        });
        t.ev(Event::TransferDone);
        assert!(T::reconnects(&t.advance(300 * SEC)));

        // The new connection works as the first did.
        assert_eq!(
            t.reply(SlaveReply::Ack {
                slave_id: 8,
                pypi_url: "u".into()
            }),
            [Action::Send(Request::Idle)]
        );
        assert_eq!(t.m.slave_id(), Some(8));
    }

    #[test]
    fn the_master_timeout_counts_from_the_last_request() {
        let mut t = T::connected();
        t.reply(SlaveReply::Sleep { paused: false });
        // No deadline for the master while sleeping; only the wake-up.
        let State::Sleeping { until } = *t.m.state() else {
            panic!()
        };
        assert_eq!(t.m.next_deadline(), Some(until));
        t.until_deadline();
        assert_eq!(t.m.next_deadline(), Some(t.now + 300 * SEC));
    }

    #[test]
    fn failed_transfer_resets() {
        let mut t = T::built(&["a.whl"]);
        t.reply(SlaveReply::Send {
            filename: "a.whl".into(),
        });
        assert_eq!(
            t.ev(Event::TransferFailed("master silent".into())),
            [
                Action::AbortTransfer,
                Action::DiscardBuild,
                Action::Connect,
                Action::Send(Request::Hello)
            ]
        );
        // Stray transfer events are ignored.
        assert!(t.ev(Event::TransferDone).is_empty());
        assert!(t.ev(Event::TransferFailed("x".into())).is_empty());
    }

    #[test]
    fn bad_replies_reset_the_connection() {
        let replies = |t: &T| -> Vec<SlaveReply> {
            let all = vec![
                SlaveReply::Ack {
                    slave_id: 1,
                    pypi_url: "u".into(),
                },
                SlaveReply::Sleep { paused: false },
                SlaveReply::Build {
                    package: "p".into(),
                    version: "v".into(),
                },
                SlaveReply::Cont,
                SlaveReply::Send {
                    filename: "a.whl".into(),
                },
                SlaveReply::Done,
            ];
            let ok: &[&str] = match t.m.state() {
                State::AwaitAck { .. } => &["ACK"],
                State::AwaitIdleReply { .. } => &["SLEEP", "BUILD"],
                State::AwaitBusyReply { .. } => &["CONT", "DONE"],
                State::AwaitBuiltReply { .. } | State::AwaitSentReply { .. } => &["SEND", "DONE"],
                s => panic!("{s:?}"),
            };
            all.into_iter()
                .filter(|r| !ok.contains(&reply_name(r)))
                .collect()
        };
        let makers: Vec<fn() -> T> = vec![
            || {
                let mut t = T::new();
                t.ev(Event::Start);
                t
            },
            T::connected,
            || T::built(&["a.whl"]),
        ];
        for make in makers {
            let probe = make();
            for bad in replies(&probe) {
                let mut t = make();
                let had_build = matches!(t.m.build(), Build::Finished(_));
                let a = t.reply(bad.clone());
                assert!(T::reconnects(&a), "{bad:?} in {:?}: {a:?}", probe.m.state());
                assert_eq!(a.contains(&Action::DiscardBuild), had_build);
                assert!(matches!(t.m.state(), State::AwaitAck { .. }));
            }
            let mut t = make();
            assert!(T::reconnects(&t.ev(Event::BadReply("not CBOR".into()))));
        }
        // BUSY outstanding: ACK/SLEEP/BUILD/SEND are errors; the running
        // build is stopped before reconnecting.
        for bad in [
            SlaveReply::Ack {
                slave_id: 1,
                pypi_url: "u".into(),
            },
            SlaveReply::Sleep { paused: true },
            SlaveReply::Build {
                package: "p".into(),
                version: "v".into(),
            },
            SlaveReply::Send {
                filename: "a.whl".into(),
            },
        ] {
            let mut t = T::building();
            assert_eq!(t.reply(bad), [Action::StopBuild]);
            assert!(T::reconnects(&t.ev(Event::BuildStopped)));
        }
    }

    #[test]
    fn send_of_an_unknown_or_failed_file_is_an_error() {
        let mut t = T::built(&["a.whl"]);
        assert!(T::reconnects(&t.reply(SlaveReply::Send {
            filename: "../etc/passwd".into()
        })));
        let mut t = T::building();
        t.ev(Event::BuildFinished(result(false, &["a.whl"])));
        t.reply(SlaveReply::Cont);
        assert!(T::reconnects(&t.reply(SlaveReply::Send {
            filename: "a.whl".into()
        })));
    }

    #[test]
    fn replies_with_nothing_outstanding_are_errors() {
        let mut t = T::connected();
        t.reply(SlaveReply::Sleep { paused: false });
        assert!(T::reconnects(&t.reply(SlaveReply::Cont)));
        let mut t = T::new();
        assert!(T::reconnects(&t.reply(SlaveReply::Cont)));
        // While stopping a build the error is logged; the stop decides.
        let mut t = T::building();
        t.reply(SlaveReply::Done);
        assert!(t.reply(SlaveReply::Cont).is_empty());
        assert!(matches!(t.m.state(), State::Stopping { .. }));
    }

    #[test]
    fn stray_build_events_are_ignored() {
        let mut t = T::connected();
        assert!(t.ev(Event::BuildFinished(result(true, &[]))).is_empty());
        assert!(t.ev(Event::BuildStopped).is_empty());
        assert!(matches!(t.m.state(), State::AwaitIdleReply { .. }));
    }

    #[test]
    fn ticks_before_deadlines_do_nothing() {
        let mut t = T::building();
        assert!(t.advance(SEC).is_empty());
        let mut t = T::new();
        assert!(t.advance(1000 * SEC).is_empty());
    }
}
