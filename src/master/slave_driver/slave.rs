//! One build slave as the master sees it: an explicit state machine.
//!
//! piwheels keeps only "the last reply" and checks requests against it;
//! here the state says what the slave is doing, and [`Slave::accepts`] is
//! the single place that decides which request is legal in which state:
//!
//! | state      | IDLE | BUSY | BUILT | SENT | reached by                  |
//! |------------|------|------|-------|------|-----------------------------|
//! | `Ready`    | ok   | ok   | DIE   | DIE  | ACK, SLEEP, DONE            |
//! | `Building` | DIE  | ok   | ok    | DIE  | BUILD                       |
//! | `Sending`  | DIE  | ok   | DIE   | ok   | SEND                        |
//! | `Dead`     | DIE  | ok   | DIE   | DIE  | DIE                         |
//!
//! HELLO and BYE are legal in every state. BUSY is accepted anywhere, as in
//! piwheels (a slave may still be winding a build down). CONT never changes
//! the state (piwheels 0.17 stored it as the last reply, which made every
//! BUILT a protocol error; 0.23 fixed that and so do we).

use std::collections::VecDeque;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::protocol::{BuildResult, FileState, SlaveHello, SlaveReply, SlaveStats};

/// How many stats reports a slave keeps for monitors (piwheels: 100).
pub const STATS_HISTORY: usize = 100;

/// A build whose files are being transferred.
#[derive(Debug, Clone)]
pub struct Transfers {
    pub package: String,
    pub version: String,
    pub result: BuildResult,
    /// The files, sorted by name, with whether each has arrived. Synthetic
    /// armv6l copies start out arrived.
    pub files: Vec<(FileState, bool)>,
    /// Failed verifications of the current file.
    pub attempts: u32,
}

impl Transfers {
    /// The first file still to transfer, in sorted order.
    pub fn next_file(&self) -> Option<&FileState> {
        self.files.iter().find(|(_, done)| !done).map(|(f, _)| f)
    }

    /// Marks the current file arrived.
    pub fn mark_current_done(&mut self) {
        if let Some(entry) = self.files.iter_mut().find(|(_, done)| !done) {
            entry.1 = true;
        }
        self.attempts = 0;
    }
}

/// What a slave is doing.
#[derive(Debug, Clone)]
pub enum State {
    /// Waiting for the slave's IDLE: after ACK, SLEEP or DONE.
    Ready,
    /// Told to BUILD this package version.
    Building { package: String, version: String },
    /// Told to SEND a file of a finished build.
    Sending(Box<Transfers>),
    /// Told to DIE; nothing but HELLO, BYE or BUSY is answered but with DIE.
    Dead,
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::Building { .. } => "building",
            State::Sending(_) => "sending",
            State::Dead => "dead",
        }
    }

    /// The package (and version) the slave is busy with, if any.
    pub fn job(&self) -> Option<(&str, &str)> {
        match self {
            State::Building { package, version } => Some((package, version)),
            State::Sending(t) => Some((&t.package, &t.version)),
            _ => None,
        }
    }
}

/// The requests whose legality depends on the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Idle,
    Busy,
    Built,
    Sent,
}

/// Everything the master knows about one connected slave.
#[derive(Debug, Clone)]
pub struct Slave {
    /// The id from ACK: a per-run counter from 1.
    pub id: u64,
    pub hello: SlaveHello,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Monotonic time of the last request, for expiry.
    pub last_contact: Instant,
    pub state: State,
    /// The last reply other than CONT, with the time of the request it
    /// answered: what a monitor is shown.
    pub last_reply: Option<(DateTime<Utc>, SlaveReply)>,
    /// The last [`STATS_HISTORY`] stats reports.
    pub stats: VecDeque<SlaveStats>,
    /// KILL: the next IDLE gets DIE.
    pub killed: bool,
    /// SKIP: the current build is abandoned at the next BUSY or BUILT.
    pub skipped: bool,
    /// SLEEP for this slave: it gets SLEEP instead of work until WAKE.
    /// (piwheels accepts this message but ignores it; we honour it.)
    pub sleeping: bool,
}

impl Slave {
    pub fn new(id: u64, hello: SlaveHello, utc: DateTime<Utc>, now: Instant) -> Slave {
        Slave {
            id,
            hello,
            first_seen: utc,
            last_seen: utc,
            last_contact: now,
            state: State::Ready,
            last_reply: None,
            stats: VecDeque::new(),
            killed: false,
            skipped: false,
            sleeping: false,
        }
    }

    /// Whether `verb` is legal now (the table in the module docs).
    pub fn accepts(&self, verb: Verb) -> bool {
        matches!(
            (&self.state, verb),
            (_, Verb::Busy)
                | (State::Ready, Verb::Idle)
                | (State::Building { .. }, Verb::Built)
                | (State::Sending(_), Verb::Sent)
        )
    }

    /// Records a request's arrival.
    pub fn touch(&mut self, utc: DateTime<Utc>, now: Instant) {
        self.last_seen = utc;
        self.last_contact = now;
    }

    /// Keeps a stats report (the last [`STATS_HISTORY`]).
    pub fn push_stats(&mut self, stats: SlaveStats) {
        if self.stats.capacity() == 0 {
            // Exactly the history, not the next power of two.
            self.stats.reserve_exact(STATS_HISTORY);
        }
        if self.stats.len() == STATS_HISTORY {
            self.stats.pop_front();
        }
        self.stats.push_back(stats);
    }

    /// Whether the slave has been silent longer than its busy timeout.
    pub fn expired(&self, now: Instant) -> bool {
        let timeout = self
            .hello
            .busy_timeout
            .to_std()
            .unwrap_or(std::time::Duration::ZERO);
        now.saturating_duration_since(self.last_contact) > timeout
    }

    /// Applies the state change a reply implies, and remembers the reply
    /// for monitors. CONT changes nothing.
    pub fn replied(&mut self, reply: &SlaveReply, utc: DateTime<Utc>) {
        match reply {
            SlaveReply::Cont => return,
            SlaveReply::Ack { .. } | SlaveReply::Sleep { .. } => self.state = State::Ready,
            SlaveReply::Done => {
                self.state = State::Ready;
                self.skipped = false;
            }
            SlaveReply::Build { package, version } => {
                self.state = State::Building {
                    package: package.clone(),
                    version: version.clone(),
                }
            }
            // The Sending state is set by the driver with the build's files.
            SlaveReply::Send { .. } => {}
            SlaveReply::Die => self.state = State::Dead,
        }
        self.last_reply = Some((utc, reply.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::TimeDelta;

    fn hello() -> SlaveHello {
        SlaveHello {
            build_timeout: TimeDelta::from_secs(3 * 3600).unwrap(),
            busy_timeout: TimeDelta::from_secs(300).unwrap(),
            py_version: "311".into(),
            native_abi: "cp311".into(),
            native_platform: "linux_armv7l".into(),
            label: "pi".into(),
            os_name: "Raspbian GNU/Linux".into(),
            os_version: "12 (bookworm)".into(),
            board_revision: "c03114".into(),
            board_serial: "1".into(),
        }
    }

    fn sending() -> State {
        State::Sending(Box::new(Transfers {
            package: "a".into(),
            version: "1".into(),
            result: BuildResult {
                status: true,
                duration: TimeDelta::ZERO,
                output: String::new(),
                files: vec![],
            },
            files: vec![],
            attempts: 0,
        }))
    }

    #[test]
    fn the_transition_table() {
        let t0 = Instant::now();
        let mut s = Slave::new(1, hello(), Utc::now(), t0);
        let building = State::Building {
            package: "a".into(),
            version: "1".into(),
        };
        let table = [
            (State::Ready, [true, true, false, false]),
            (building, [false, true, true, false]),
            (sending(), [false, true, false, true]),
            (State::Dead, [false, true, false, false]),
        ];
        for (state, want) in table {
            let name = state.name();
            s.state = state;
            for (verb, ok) in [Verb::Idle, Verb::Busy, Verb::Built, Verb::Sent]
                .into_iter()
                .zip(want)
            {
                assert_eq!(s.accepts(verb), ok, "{verb:?} in {name}");
            }
        }
    }

    #[test]
    fn replies_move_the_state_and_cont_does_not() {
        let mut s = Slave::new(1, hello(), Utc::now(), Instant::now());
        let utc = Utc::now();
        s.replied(
            &SlaveReply::Build {
                package: "a".into(),
                version: "1".into(),
            },
            utc,
        );
        assert!(matches!(s.state, State::Building { .. }));
        s.replied(&SlaveReply::Cont, utc);
        assert!(matches!(s.state, State::Building { .. }));
        assert!(matches!(s.last_reply, Some((_, SlaveReply::Build { .. }))));
        s.skipped = true;
        s.replied(&SlaveReply::Done, utc);
        assert!(matches!(s.state, State::Ready) && !s.skipped);
        s.replied(&SlaveReply::Die, utc);
        assert!(matches!(s.state, State::Dead));
    }

    #[test]
    fn expiry_follows_the_busy_timeout() {
        let t0 = Instant::now();
        let s = Slave::new(1, hello(), Utc::now(), t0);
        assert!(!s.expired(t0 + std::time::Duration::from_secs(300)));
        assert!(s.expired(t0 + std::time::Duration::from_secs(301)));
    }

    #[test]
    fn stats_history_is_bounded() {
        let mut s = Slave::new(1, hello(), Utc::now(), Instant::now());
        let stats = SlaveStats {
            timestamp: Utc::now(),
            disk_size: 1,
            disk_free: 1,
            mem_size: 1,
            mem_free: 1,
            swap_size: 0,
            swap_free: 0,
            load_average: 0.0,
            cpu_temp: 0.0,
        };
        for _ in 0..250 {
            s.push_stats(stats.clone());
        }
        assert_eq!(s.stats.len(), STATS_HISTORY);
    }
}
