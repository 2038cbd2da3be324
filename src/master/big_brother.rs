//! big_brother: the master's statistics.
//!
//! * every 10 s: host figures (memory, swap, load, temperature, disk) are
//!   refreshed and a `STATS` record (piwheels 0.23's 19 fields, in wire
//!   order) goes to the status feed; the last 100 are kept and replayed to
//!   a monitor that says HELLO;
//! * every 60 s: the database figures are read (`get_statistics`; the
//!   all-time download count once with `get_initial_statistics`, then kept
//!   up to date from the download counts lumberjack reports) and the
//!   homepage is rewritten;
//! * every 60 min: `packages.json` (the search index) is rewritten.
//!
//! All periodic work is skipped while paused, as in piwheels 0.23. A
//! forced HOME (piw-rebuild) makes the homepage and search index due at
//! once. The low-disk guard lives in the master loop (it pauses the whole
//! master); the disk figures here are read with statvfs at every tick, and
//! STATFS reports from the file juggler update them in between.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::db::{Database, Statistics};
use crate::logging::target;
use crate::master::tasks::{StatsSink, StatusSink};
use crate::protocol::{MasterStats, StatusMessage, TimeDelta};

/// Interval of the `STATS` messages.
pub const STATS_EVERY: Duration = Duration::from_secs(10);
/// Interval of the homepage rewrite (and the database figures).
pub const HOME_EVERY: Duration = Duration::from_secs(60);
/// Interval of the search index rewrite.
pub const SEARCH_EVERY: Duration = Duration::from_secs(3600);
/// `STATS` records kept for replay.
pub const HISTORY: usize = 100;

/// The pages big brother keeps fresh (the web task implements it).
pub trait SitePages {
    /// Rewrite the homepage with these figures.
    fn homepage(&mut self, stats: &MasterStats, now: DateTime<Utc>);
    /// Rewrite `packages.json`.
    fn search_index(&mut self, db: &mut Database);
}

/// A recorded page request, for tests.
#[derive(Debug, Clone, PartialEq)]
pub enum SitePage {
    Home(MasterStats),
    Search,
}

impl SitePages for Vec<SitePage> {
    fn homepage(&mut self, stats: &MasterStats, _now: DateTime<Utc>) {
        self.push(SitePage::Home(stats.clone()));
    }
    fn search_index(&mut self, _db: &mut Database) {
        self.push(SitePage::Search);
    }
}

/// The statistics task.
pub struct BigBrother {
    output_path: PathBuf,
    stats: MasterStats,
    history: VecDeque<MasterStats>,
    /// The all-time download count is known (read once, then counted).
    downloads_known: bool,
    started: Instant,
    next_stats: Instant,
    next_home: Instant,
    next_search: Instant,
    paused: bool,
}

/// An all-zero record at `now`.
fn empty_stats(now: DateTime<Utc>) -> MasterStats {
    MasterStats {
        timestamp: now,
        packages_built: 0,
        builds_last_hour: Vec::new(),
        builds_time: TimeDelta::ZERO,
        builds_size: 0,
        builds_pending: Vec::new(),
        new_last_hour: 0,
        files_count: 0,
        downloads_last_hour: 0,
        downloads_last_month: 0,
        downloads_all: 0,
        disk_size: 0,
        disk_free: 0,
        mem_size: 0,
        mem_free: 0,
        swap_size: 0,
        swap_free: 0,
        load_average: 0.0,
        cpu_temp: 0.0,
    }
}

fn count(n: i32) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl BigBrother {
    /// The task; every job is due at `now` (as piwheels' timers are).
    pub fn new(output_path: PathBuf, now: Instant, wall: DateTime<Utc>) -> BigBrother {
        BigBrother {
            output_path,
            stats: empty_stats(wall),
            history: VecDeque::with_capacity(HISTORY),
            downloads_known: false,
            started: now,
            next_stats: now,
            next_home: now,
            next_search: now,
            paused: false,
        }
    }

    /// The latest figures.
    pub fn stats(&self) -> &MasterStats {
        &self.stats
    }

    /// The records kept for replay, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &MasterStats> {
        self.history.iter()
    }

    /// Skips periodic work until [`BigBrother::resume`].
    pub fn pause(&mut self) {
        self.paused = true;
    }

    pub fn resume(&mut self) {
        self.paused = false;
    }

    /// When `on_timer` next has work.
    pub fn next_deadline(&self) -> Instant {
        self.next_stats.min(self.next_home).min(self.next_search)
    }

    /// Runs the jobs due at `now` (`wall`: the same moment in UTC): the
    /// homepage (with fresh database figures), the search index, then
    /// `STATS` to `status`.
    pub fn on_timer(
        &mut self,
        now: Instant,
        wall: DateTime<Utc>,
        db: &mut Database,
        site: &mut impl SitePages,
        status: &mut impl StatusSink,
    ) {
        if self.next_home <= now {
            self.next_home = now + HOME_EVERY;
            if !self.paused {
                self.read_database(db);
                self.stats.timestamp = wall;
                site.homepage(&self.stats, wall);
            }
        }
        if self.next_search <= now {
            self.next_search = now + SEARCH_EVERY;
            if !self.paused {
                site.search_index(db);
            }
        }
        if self.next_stats <= now {
            self.next_stats = now + STATS_EVERY;
            if !self.paused {
                self.read_host();
                self.stats.timestamp = wall;
                self.record(status);
            }
        }
    }

    /// Sends the kept records to `status` (a monitor said HELLO).
    pub fn replay(&self, status: &mut impl StatusSink) {
        for s in &self.history {
            status.publish(StatusMessage::Stats(s.clone()));
        }
    }

    fn record(&mut self, status: &mut impl StatusSink) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(self.stats.clone());
        status.publish(StatusMessage::Stats(self.stats.clone()));
    }

    fn read_database(&mut self, db: &mut Database) {
        match db.get_statistics() {
            Ok(s) => self.apply(&s),
            Err(e) => {
                log::warn!(target: target::BIG_BROTHER, "cannot read statistics: {e}");
                return;
            }
        }
        if !self.downloads_known {
            match db.get_initial_statistics() {
                Ok(n) => {
                    self.downloads_known = true;
                    self.stats.downloads_all = u64::try_from(n).unwrap_or(0);
                }
                Err(e) => {
                    log::warn!(target: target::BIG_BROTHER, "cannot count downloads: {e}")
                }
            }
        }
    }

    /// Takes the database's figures.
    pub fn apply(&mut self, s: &Statistics) {
        let t = &mut self.stats;
        t.packages_built = count(s.packages_built);
        t.builds_last_hour = s
            .builds_last_hour
            .iter()
            .map(|(abi, n)| (abi.clone(), count(*n)))
            .collect();
        t.builds_time =
            TimeDelta::from_micros(s.builds_time.as_micros() as i128).unwrap_or(TimeDelta::ZERO);
        t.builds_size = u64::try_from(s.builds_size).unwrap_or(0);
        t.new_last_hour = count(s.new_last_hour);
        t.files_count = count(s.files_count);
        t.downloads_last_hour = count(s.downloads_last_hour);
        t.downloads_last_month = count(s.downloads_last_month);
    }

    fn read_host(&mut self) {
        let mem = crate::info::meminfo();
        let t = &mut self.stats;
        t.mem_size = mem.mem_size;
        t.mem_free = mem.mem_free;
        t.swap_size = mem.swap_size;
        t.swap_free = mem.swap_free;
        t.load_average = crate::info::load_average();
        t.cpu_temp = crate::info::cpu_temp();
        if let Ok((size, free)) = crate::info::disk_usage(&self.output_path) {
            t.disk_size = size;
            t.disk_free = free;
        }
    }
}

impl StatsSink for BigBrother {
    fn disk(&mut self, size: u64, free: u64) {
        self.stats.disk_size = size;
        self.stats.disk_free = free;
    }

    fn build_queue(&mut self, lengths: &[(String, u64)]) {
        self.stats.builds_pending = lengths.to_vec();
    }

    fn downloads(&mut self, count: u64) {
        // Before the initial count is read, the database's count will
        // include these.
        if self.downloads_known {
            self.stats.downloads_all += count;
        }
    }

    fn force_home(&mut self) {
        self.next_home = self.started;
        self.next_search = self.started;
    }
}
