//! What a monitor knows about the master and its build slaves, fed only by
//! the status messages it receives (sans-IO: the caller passes the clock).
//!
//! The rules follow piwheels' monitor:
//! - `HELLO` (a `MasterHello`) names the master and clears its stats
//!   history; `STATS` appends to it (at most [`HISTORY`] kept). Both mark
//!   the master as seen *now*, since they carry no timestamp of their own.
//! - `SLAVE [id, timestamp, msg, data]` creates the slave on first sight and
//!   updates it: `HELLO` (its `SlaveHello`) resets it, `STATS` records its
//!   host statistics, and every reply the master sent it (`ACK`, `SLEEP`,
//!   `BUILD`, `SEND`, `DONE`, `CONT`, `DIE`) sets what it is doing.
//! - A slave told `DIE` is shown as terminated and forgotten
//!   [`FORGET_AFTER`] after it was last seen.
//!
//! Malformed data never panics: the slave's status then says what could not
//! be read.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, TimeDelta as Span, Utc};

use crate::protocol::{
    MasterHello, MasterStats, Record, SlaveHello, SlaveStats, StatusMessage, Value,
};

/// Stats entries kept per master and per slave (piwheels keeps 100).
pub const HISTORY: usize = 100;

/// A terminated slave stays on screen this long after it was last seen.
pub const FORGET_AFTER: Duration = Duration::from_secs(5);

/// The master counts as silent when nothing came from it for this long
/// (it sends STATS every 10 s).
pub const MASTER_SILENT_AFTER: Duration = Duration::from_secs(30);

/// What a slave appears to be doing (the colour of its marker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Connected, waiting for work (or not yet introduced).
    Idle,
    /// Building a package.
    Building,
    /// Sending a wheel to the master.
    Sending,
    /// Cleaning up after a build.
    Cleaning,
    /// Nothing heard for more than half its busy timeout.
    Silent,
    /// Nothing heard for more than its busy timeout, or told to die.
    Dead,
}

impl Activity {
    /// A short word for text output.
    pub fn word(self) -> &'static str {
        match self {
            Activity::Idle => "idle",
            Activity::Building => "building",
            Activity::Sending => "sending",
            Activity::Cleaning => "cleaning",
            Activity::Silent => "silent",
            Activity::Dead => "dead",
        }
    }
}

/// The master, as its HELLO and STATS describe it.
#[derive(Debug, Clone, Default)]
pub struct MasterState {
    /// Its last HELLO (`None` until it answered).
    pub hello: Option<MasterHello>,
    /// When we last heard from it (our clock).
    pub last_seen: Option<DateTime<Utc>>,
    /// Its STATS, oldest first.
    pub stats: VecDeque<MasterStats>,
}

impl MasterState {
    /// The newest STATS.
    pub fn latest(&self) -> Option<&MasterStats> {
        self.stats.back()
    }

    /// Whether the master has gone quiet.
    pub fn is_silent(&self, now: DateTime<Utc>) -> bool {
        self.last_seen
            .is_some_and(|t| now - t > Span::from_std(MASTER_SILENT_AFTER).unwrap_or_default())
    }
}

/// One build slave.
#[derive(Debug, Clone)]
pub struct SlaveState {
    pub slave_id: u64,
    /// Its HELLO, once seen.
    pub hello: Option<SlaveHello>,
    /// When it said HELLO.
    pub first_seen: Option<DateTime<Utc>>,
    /// The timestamp of the latest message about it.
    pub last_seen: DateTime<Utc>,
    /// The latest message name (`BUILD`, `SLEEP`, `STATS`, ...).
    pub last_msg: String,
    /// What it is doing, in words.
    pub status: String,
    /// The package and version it is building.
    pub build: Option<(String, String)>,
    /// When the current build started.
    pub build_start: Option<DateTime<Utc>>,
    /// Its host statistics, oldest first.
    pub stats: VecDeque<SlaveStats>,
    /// The master's clock minus the slave's, from the latest STATS.
    pub clock_skew: Option<Span>,
    /// Told to die (or said goodbye).
    pub killed: bool,
    /// The latest SLEEP said the master is paused.
    pub master_paused: bool,
}

impl SlaveState {
    fn new(slave_id: u64, timestamp: DateTime<Utc>) -> SlaveState {
        SlaveState {
            slave_id,
            hello: None,
            first_seen: None,
            last_seen: timestamp,
            last_msg: String::new(),
            status: String::new(),
            build: None,
            build_start: None,
            stats: VecDeque::new(),
            clock_skew: None,
            killed: false,
            master_paused: false,
        }
    }

    /// Its label (host name), or `-` before its HELLO.
    pub fn label(&self) -> &str {
        self.hello.as_ref().map_or("-", |h| h.label.as_str())
    }

    /// Its native ABI, or `-`.
    pub fn abi(&self) -> &str {
        self.hello.as_ref().map_or("-", |h| h.native_abi.as_str())
    }

    /// The newest host statistics.
    pub fn latest_stats(&self) -> Option<&SlaveStats> {
        self.stats.back()
    }

    /// Order in the list: by ABI, then label, then id (as piwheels sorts).
    fn sort_key(&self) -> (&str, &str, u64) {
        (self.abi(), self.label(), self.slave_id)
    }

    fn update(&mut self, timestamp: DateTime<Utc>, msg: &str, data: &Value) {
        self.last_seen = timestamp;
        self.last_msg = msg.to_owned();
        match msg {
            "HELLO" => match SlaveHello::from_value(data) {
                Ok(hello) => {
                    self.hello = Some(hello);
                    self.first_seen = Some(timestamp);
                    self.status = "Initializing".into();
                    self.stats.clear();
                    self.build = None;
                    self.build_start = None;
                    self.killed = false;
                }
                Err(e) => self.status = format!("unreadable HELLO ({e})"),
            },
            "STATS" => match SlaveStats::from_value(data) {
                Ok(stats) => {
                    self.clock_skew = Some(timestamp - stats.timestamp);
                    if self.stats.len() == HISTORY {
                        self.stats.pop_front();
                    }
                    self.stats.push_back(stats);
                }
                Err(e) => self.status = format!("unreadable STATS ({e})"),
            },
            "SLEEP" => {
                self.master_paused = matches!(data, Value::Bool(true));
                self.status = if self.master_paused {
                    "Paused (the master is paused)".into()
                } else {
                    "Waiting for jobs".into()
                };
            }
            "BUILD" => match data {
                Value::Array(a) if a.len() == 2 => {
                    let (p, v) = (text(&a[0]), text(&a[1]));
                    self.status = format!("Building {p} {v}");
                    self.build = Some((p, v));
                    self.build_start = Some(timestamp);
                }
                _ => self.status = "Building (unreadable package)".into(),
            },
            "SEND" => {
                self.status = match data {
                    Value::Text(f) => format!("Transferring {f}"),
                    _ => "Transferring file".into(),
                }
            }
            "DONE" => {
                self.status = "Cleaning up after build".into();
                self.build = None;
                self.build_start = None;
            }
            "DIE" | "BYE" => {
                self.status = "Terminating".into();
                self.killed = true;
            }
            "ACK" | "CONT" => {}
            other => self.status = format!("Sent {other}"),
        }
    }

    /// What the slave appears to be doing at `now`.
    pub fn activity(&self, now: DateTime<Utc>) -> Activity {
        if let Some(hello) = &self.hello {
            let quiet = now - self.last_seen;
            let busy = hello.busy_timeout.to_chrono();
            if quiet > busy {
                return Activity::Dead;
            }
            if quiet > busy / 2 {
                return Activity::Silent;
            }
            if self.killed {
                return Activity::Dead;
            }
            match self.last_msg.as_str() {
                "DONE" => return Activity::Cleaning,
                "SEND" => return Activity::Sending,
                _ => {}
            }
            if self.build_start.is_some() {
                return Activity::Building;
            }
        }
        if self.killed {
            Activity::Dead
        } else {
            Activity::Idle
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

/// Everything a monitor knows.
#[derive(Debug, Clone, Default)]
pub struct Monitor {
    pub master: MasterState,
    slaves: BTreeMap<u64, SlaveState>,
}

impl Monitor {
    pub fn new() -> Monitor {
        Monitor::default()
    }

    /// Whether the master has answered (sent its HELLO).
    pub fn connected(&self) -> bool {
        self.master.hello.is_some()
    }

    /// Applies one status message received at `now`.
    pub fn apply(&mut self, msg: &StatusMessage, now: DateTime<Utc>) {
        match msg {
            StatusMessage::Hello(hello) => {
                self.master.hello = Some(hello.clone());
                self.master.last_seen = Some(now);
                self.master.stats.clear();
            }
            StatusMessage::Stats(stats) => {
                self.master.last_seen = Some(now);
                if self.master.stats.len() == HISTORY {
                    self.master.stats.pop_front();
                }
                self.master.stats.push_back(stats.clone());
            }
            StatusMessage::Slave(s) => {
                self.slaves
                    .entry(s.slave_id)
                    .or_insert_with(|| SlaveState::new(s.slave_id, s.timestamp))
                    .update(s.timestamp, &s.msg, &s.data);
            }
        }
    }

    /// Forgets slaves that were terminated a while ago. Returns whether any
    /// went.
    pub fn tick(&mut self, now: DateTime<Utc>) -> bool {
        let linger = Span::from_std(FORGET_AFTER).unwrap_or_default();
        let before = self.slaves.len();
        self.slaves
            .retain(|_, s| !(s.killed && now - s.last_seen > linger));
        self.slaves.len() != before
    }

    /// Every slave, in display order (ABI, label, id).
    pub fn slaves(&self) -> Vec<&SlaveState> {
        let mut v: Vec<&SlaveState> = self.slaves.values().collect();
        v.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        v
    }

    /// One slave by id.
    pub fn slave(&self, id: u64) -> Option<&SlaveState> {
        self.slaves.get(&id)
    }

    /// Whether the slaves' latest SLEEP replies say the master is paused.
    pub fn master_paused(&self) -> bool {
        self.slaves
            .values()
            .any(|s| !s.killed && s.last_msg == "SLEEP" && s.master_paused)
    }
}

/// `3s`, `4m 05s`, `2h 03m`, `5d 02h` (negative spans show as `0s`).
pub fn format_span(span: Span) -> String {
    let s = span.num_seconds().max(0);
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h:02}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {sec:02}s")
    } else {
        format!("{sec}s")
    }
}

/// Bytes for people: `512 B`, `1.5 KiB`, `12.3 GiB`.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::protocol::{SlaveStatus, TimeDelta};
    use chrono::TimeZone;

    pub fn t(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap() + Span::seconds(secs)
    }

    pub fn slave_hello(label: &str, abi: &str) -> SlaveHello {
        SlaveHello {
            build_timeout: TimeDelta::from_secs(10_800).unwrap(),
            busy_timeout: TimeDelta::from_secs(300).unwrap(),
            py_version: "311".into(),
            native_abi: abi.into(),
            native_platform: "linux_armv7l".into(),
            label: label.into(),
            os_name: "Raspbian GNU/Linux".into(),
            os_version: "12".into(),
            board_revision: "a02082".into(),
            board_serial: "00000000abcdef".into(),
        }
    }

    pub fn slave_stats(at: DateTime<Utc>) -> SlaveStats {
        SlaveStats {
            timestamp: at,
            disk_size: 32 << 30,
            disk_free: 20 << 30,
            mem_size: 4 << 30,
            mem_free: 3 << 30,
            swap_size: 1 << 30,
            swap_free: 1 << 30,
            load_average: 0.5,
            cpu_temp: 48.5,
        }
    }

    pub fn master_stats(at: DateTime<Utc>) -> MasterStats {
        MasterStats {
            timestamp: at,
            packages_built: 412_345,
            builds_last_hour: vec![("cp39".into(), 12), ("cp311".into(), 87)],
            builds_time: TimeDelta::from_secs(86_400).unwrap(),
            builds_size: 9_876_543_210,
            builds_pending: vec![("cp39".into(), 1), ("cp311".into(), 4567)],
            new_last_hour: 321,
            files_count: 1_234_567,
            downloads_last_hour: 45_678,
            downloads_last_month: 98_765_432,
            downloads_all: 1_234_567_890,
            disk_size: 4 << 40,
            disk_free: 1 << 40,
            mem_size: 8 << 30,
            mem_free: 4 << 30,
            swap_size: 0,
            swap_free: 0,
            load_average: 1.25,
            cpu_temp: 52.0,
        }
    }

    pub fn master_hello() -> MasterHello {
        MasterHello {
            timestamp: t(-3600),
            label: "piwheels-master".into(),
            os_name: "Debian GNU/Linux".into(),
            os_version: "12".into(),
            board_revision: "unknown".into(),
            board_serial: "unknown".into(),
        }
    }

    pub fn slave(id: u64, at: DateTime<Utc>, msg: &str, data: Value) -> StatusMessage {
        StatusMessage::Slave(SlaveStatus {
            slave_id: id,
            timestamp: at,
            msg: msg.into(),
            data,
        })
    }

    fn build(p: &str, v: &str) -> Value {
        Value::Array(vec![Value::text(p), Value::text(v)])
    }

    #[test]
    fn a_slave_goes_through_a_build() {
        let mut m = Monitor::new();
        assert!(!m.connected());
        m.apply(&StatusMessage::Hello(master_hello()), t(0));
        assert!(m.connected());
        m.apply(
            &slave(7, t(1), "HELLO", slave_hello("pi4", "cp311").to_value()),
            t(1),
        );
        m.apply(
            &slave(
                7,
                t(1),
                "ACK",
                Value::Array(vec![7u64.into(), Value::text("u")]),
            ),
            t(1),
        );
        let s = m.slave(7).unwrap();
        assert_eq!(
            (s.label(), s.abi(), s.status.as_str()),
            ("pi4", "cp311", "Initializing")
        );
        assert_eq!(s.activity(t(2)), Activity::Idle);

        m.apply(&slave(7, t(2), "SLEEP", Value::Bool(false)), t(2));
        assert_eq!(m.slave(7).unwrap().status, "Waiting for jobs");
        assert!(!m.master_paused());
        m.apply(&slave(7, t(3), "BUILD", build("numpy", "1.26.4")), t(3));
        let s = m.slave(7).unwrap();
        assert_eq!(s.status, "Building numpy 1.26.4");
        assert_eq!(s.activity(t(4)), Activity::Building);
        m.apply(
            &slave(7, t(10), "STATS", slave_stats(t(9)).to_value()),
            t(10),
        );
        let s = m.slave(7).unwrap();
        assert_eq!(s.clock_skew, Some(Span::seconds(1)));
        assert_eq!(s.latest_stats().unwrap().cpu_temp, 48.5);
        assert_eq!(s.status, "Building numpy 1.26.4");
        m.apply(
            &slave(7, t(20), "SEND", Value::text("numpy-1.26.4.whl")),
            t(20),
        );
        assert_eq!(m.slave(7).unwrap().activity(t(21)), Activity::Sending);
        m.apply(&slave(7, t(30), "DONE", Value::NoData), t(30));
        let s = m.slave(7).unwrap();
        assert_eq!(s.activity(t(31)), Activity::Cleaning);
        assert_eq!(s.build, None);
        // Silent after half the busy timeout, dead after all of it.
        assert_eq!(s.activity(t(30 + 151)), Activity::Silent);
        assert_eq!(s.activity(t(30 + 301)), Activity::Dead);
    }

    #[test]
    fn paused_master_and_dying_slaves() {
        let mut m = Monitor::new();
        m.apply(
            &slave(1, t(0), "HELLO", slave_hello("b", "cp39").to_value()),
            t(0),
        );
        m.apply(
            &slave(2, t(0), "HELLO", slave_hello("a", "cp39").to_value()),
            t(0),
        );
        m.apply(
            &slave(3, t(0), "HELLO", slave_hello("z", "cp311").to_value()),
            t(0),
        );
        let order: Vec<u64> = m.slaves().iter().map(|s| s.slave_id).collect();
        assert_eq!(order, [3, 2, 1]);
        m.apply(&slave(1, t(1), "SLEEP", Value::Bool(true)), t(1));
        assert!(m.master_paused());
        m.apply(&slave(2, t(2), "DIE", Value::NoData), t(2));
        assert_eq!(m.slave(2).unwrap().activity(t(2)), Activity::Dead);
        assert!(!m.tick(t(7)));
        assert!(m.tick(t(8)));
        assert!(m.slave(2).is_none());
        assert_eq!(m.slaves().len(), 2);
    }

    #[test]
    fn master_stats_history_is_bounded_and_hello_clears_it() {
        let mut m = Monitor::new();
        let stats = master_stats(t(0));
        for i in 0..150 {
            m.apply(&StatusMessage::Stats(stats.clone()), t(i));
        }
        assert_eq!(m.master.stats.len(), HISTORY);
        assert!(!m.master.is_silent(t(149 + 30)));
        assert!(m.master.is_silent(t(149 + 31)));
        m.apply(&StatusMessage::Hello(master_hello()), t(200));
        assert!(m.master.stats.is_empty());
    }

    #[test]
    fn bad_data_is_reported_not_fatal() {
        let mut m = Monitor::new();
        m.apply(&slave(1, t(0), "HELLO", Value::Null), t(0));
        assert!(m.slave(1).unwrap().status.contains("unreadable HELLO"));
        m.apply(&slave(1, t(0), "STATS", Value::text("x")), t(0));
        assert!(m.slave(1).unwrap().status.contains("unreadable STATS"));
        m.apply(&slave(1, t(0), "BUILD", Value::Null), t(0));
        m.apply(&slave(1, t(0), "WHAT", Value::Null), t(0));
        assert_eq!(m.slave(1).unwrap().status, "Sent WHAT");
        assert_eq!(m.slave(1).unwrap().activity(t(0)), Activity::Idle);
    }

    #[test]
    fn formats() {
        assert_eq!(format_span(Span::seconds(3)), "3s");
        assert_eq!(format_span(Span::seconds(245)), "4m 05s");
        assert_eq!(format_span(Span::seconds(7380)), "2h 03m");
        assert_eq!(format_span(Span::seconds(5 * 86_400 + 7200)), "5d 02h");
        assert_eq!(format_span(Span::seconds(-5)), "0s");
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(20 << 30), "20.0 GiB");
    }
}
