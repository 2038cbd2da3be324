//! lumberjack: web-server hits from piw-logger (the log queue, PULL) into
//! the database, batched, with a per-minute download count for big_brother.
//!
//! piwheels' Lumberjack writes each hit with its own database round trip
//! and commit. Here hits are decoded and checked as they arrive, kept in a
//! bounded buffer, and written by [`Lumberjack::flush`] in **one
//! transaction** holding at most one statement per kind of hit (the stored
//! functions `log_download`, `log_search`, `log_project`, `log_json` and
//! `log_page`, applied to arrays with `unnest`): at most eight round trips
//! however many hits (`BEGIN`, `synchronous_commit` off for the transaction
//! with its id returned, five statements, `COMMIT`). The commit does not wait for the disk: hits are
//! statistics, and a crash losing the last moments of them is a better
//! deal than an fsync in every turn of the poll loop.
//!
//! # Contract with the master's poll loop
//!
//! ```text
//! let mut lumberjack = Lumberjack::new();
//! loop {
//!     timeout = min(timers, lumberjack.next_deadline(now) - now)
//!     zmq::poll([... log socket POLLIN ...], timeout)
//!     if log socket readable:
//!         lumberjack.drain(&sockets.log, lumberjack::DRAIN_MAX);  // or on_frame() per frame
//!     if lumberjack.flush_due(now):
//!         lumberjack.flush(&mut db, now);       // one transaction, never blocks on a dead DB
//!     on Timer::LogReport (every REPORT_INTERVAL = 60 s, first due one interval after start):
//!         lumberjack.report(&mut big_brother);  // StatsSink::downloads(n)
//!     on control SLEEP null / WAKE null:
//!         lumberjack.pause() / lumberjack.resume();
//!     at shutdown:
//!         lumberjack.shutdown(&mut db);         // last flush, says what was lost
//! }
//! ```
//!
//! - **Frames.** [`drain`](Lumberjack::drain) reads up to `max` frames
//!   without blocking; [`on_frame`](Lumberjack::on_frame) takes one. A frame
//!   that does not decode, or a hit the database could not store (a client
//!   address that is not an IP address, a name longer than its column), is
//!   logged (at most [`LOG_LIMIT`] lines a minute, the rest counted in the
//!   minute's summary) and dropped; nothing a peer sends is fatal.
//! - **Flushing.** Call [`flush`](Lumberjack::flush) after each drained
//!   batch; it writes up to [`FLUSH_MAX`] buffered hits in one transaction.
//!   Over-long optional fields are cut to their column's size; NULs and
//!   other control characters become U+FFFD, as the data layer does.
//! - **Database down.** A failed flush keeps the hits and sets a retry
//!   time (the data layer's back-off, at least [`RETRY_MIN`]); until then
//!   `flush` returns at once without touching the network, and
//!   [`next_deadline`](Lumberjack::next_deadline) tells the loop when to
//!   try again. The buffer holds [`CAPACITY`] hits; past that, new hits are
//!   dropped and counted, and the count is logged when the buffer first
//!   overflows, every minute while it does, and when the database is back.
//!   A connection lost during `COMMIT` leaves the outcome unknown: before
//!   writing again, the lumberjack asks the server (`txid_status` of the
//!   transaction, whose id the first statement returned) and drops the
//!   hits that did get in; only when the server cannot tell (after three
//!   asks) are they written again and may appear twice.
//!   A statement the server refuses for its data (SQLSTATE classes 22 and
//!   23) is retried hit by hit to find and drop the culprit; any other
//!   refusal (permissions, a missing function) keeps everything and retries
//!   like an outage, so a misconfiguration never throws hits away.
//! - **Pause.** While paused (the master's `SLEEP null`) nothing is written;
//!   hits are still accepted up to the bound.
//! - **Reporting.** [`report`](Lumberjack::report), every minute, passes the
//!   number of downloads *committed* since the last report to big_brother
//!   (piwheels' `LOGDOWNLOAD n` on the stats queue) and logs the minute's
//!   counts.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;

use super::tasks::StatsSink;
use crate::db::{AccessLog, Database, DbError, HitLog, Retry, sanitize};
use crate::logger::LogType;
use crate::logging::target;
use crate::protocol::{ClientInfo, LogMessage, PageHit, WireMessage};

/// Hits kept while the database is unavailable (or the master paused).
pub const CAPACITY: usize = 10_000;

/// Most hits written by one flush (one transaction): about 20 ms of
/// database work on a PC, so even catching up after an outage keeps the
/// poll loop's turns short.
pub const FLUSH_MAX: usize = 1_000;

/// Frames the poll loop should take from the log queue per turn: enough
/// to make each transaction worth its commit (hundreds of hits per commit
/// at full load), few enough that decoding them and flushing them keeps a
/// turn well under the 50 ms in which slaves must be answered.
pub const DRAIN_MAX: usize = 500;

/// How often [`Lumberjack::report`] should run.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(60);

/// Shortest wait before retrying a failed flush.
pub const RETRY_MIN: Duration = Duration::from_secs(1);

/// Most log lines per minute about bad frames or hits.
pub const LOG_LIMIT: u32 = 10;

// Column sizes of the access-log tables (sql/create_piwheels.sql).
const FILENAME_MAX: usize = 255;
const PACKAGE_MAX: usize = 200;
const PAGE_MAX: usize = 30;
const CLIENT_FIELD_MAX: usize = 100;
const INSTALLER_NAME_MAX: usize = 20;
const USER_AGENT_MAX: usize = 2000;

/// A checked hit, ready for its table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hit {
    Download(AccessLog),
    Search(AccessLog),
    Project(HitLog),
    Json(HitLog),
    Page(HitLog),
}

fn clean(s: &str, max: usize) -> String {
    let s = sanitize(s);
    if s.chars().count() > max {
        s.chars().take(max).collect()
    } else {
        s.into_owned()
    }
}

fn clean_opt(s: Option<String>, max: usize) -> Option<String> {
    s.map(|v| clean(&v, max))
}

fn parse_host(host: &str) -> Result<IpAddr, String> {
    host.trim()
        .parse()
        .map_err(|_| format!("client address {host:?} is not an IP address"))
}

fn checked_name(kind: LogType, name: &str, max: usize) -> Result<String, String> {
    let n = name.chars().count();
    if n == 0 {
        return Err(format!("{} without a name", kind.message_name()));
    }
    if n > max {
        return Err(format!(
            "{} name of {n} characters (the column holds {max})",
            kind.message_name()
        ));
    }
    Ok(sanitize(name).into_owned())
}

fn access_log(
    kind: LogType,
    name: &str,
    host: &str,
    timestamp: chrono::DateTime<chrono::Utc>,
    client: ClientInfo,
    max: usize,
) -> Result<AccessLog, String> {
    let mut log = AccessLog::new(checked_name(kind, name, max)?, parse_host(host)?, timestamp);
    log.arch = clean_opt(client.arch, CLIENT_FIELD_MAX);
    log.distro_name = clean_opt(client.distro_name, CLIENT_FIELD_MAX);
    log.distro_version = clean_opt(client.distro_version, CLIENT_FIELD_MAX);
    log.os_name = clean_opt(client.os_name, CLIENT_FIELD_MAX);
    log.os_version = clean_opt(client.os_version, CLIENT_FIELD_MAX);
    log.py_name = clean_opt(client.py_name, CLIENT_FIELD_MAX);
    log.py_version = clean_opt(client.py_version, CLIENT_FIELD_MAX);
    log.installer_name = clean_opt(client.installer_name, INSTALLER_NAME_MAX);
    log.installer_version = clean_opt(client.installer_version, CLIENT_FIELD_MAX);
    log.setuptools_version = clean_opt(client.setuptools_version, CLIENT_FIELD_MAX);
    Ok(log)
}

fn hit_log(kind: LogType, hit: PageHit, max: usize) -> Result<HitLog, String> {
    Ok(HitLog {
        name: checked_name(kind, &hit.name, max)?,
        host: parse_host(&hit.host)?,
        timestamp: hit.timestamp,
        user_agent: Some(clean(&hit.user_agent, USER_AGENT_MAX)),
    })
}

impl Hit {
    /// Checks a message against what its table can hold.
    pub fn from_message(msg: LogMessage) -> Result<Hit, String> {
        let kind = LogType::of(&msg);
        Ok(match msg {
            LogMessage::Download(d) => Hit::Download(access_log(
                kind,
                &d.filename,
                &d.host,
                d.timestamp,
                d.client,
                FILENAME_MAX,
            )?),
            LogMessage::Search(s) => Hit::Search(access_log(
                kind,
                &s.package,
                &s.host,
                s.timestamp,
                s.client,
                PACKAGE_MAX,
            )?),
            LogMessage::Project(h) => Hit::Project(hit_log(kind, h, PACKAGE_MAX)?),
            LogMessage::Json(h) => Hit::Json(hit_log(kind, h, PACKAGE_MAX)?),
            LogMessage::Page(h) => Hit::Page(hit_log(kind, h, PAGE_MAX)?),
        })
    }

    pub fn kind(&self) -> LogType {
        match self {
            Hit::Download(_) => LogType::Download,
            Hit::Search(_) => LogType::Search,
            Hit::Project(_) => LogType::Project,
            Hit::Json(_) => LogType::Json,
            Hit::Page(_) => LogType::Page,
        }
    }
}

/// What one flush did to the database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Hits written.
    pub rows: usize,
    /// Transactions committed (1 per flush, more only when a refused row
    /// had to be found).
    pub transactions: u32,
    /// Round trips to the server (`BEGIN`, `SET LOCAL`, one statement per
    /// kind, `COMMIT`).
    pub round_trips: u32,
    /// Hits the server refused for their data, dropped.
    pub refused: usize,
}

/// The result of [`Lumberjack::flush`].
#[derive(Debug, Clone, PartialEq)]
pub enum Flush {
    /// The buffer is empty.
    Nothing,
    /// Paused: nothing written.
    Paused,
    /// A previous failure: not before this time.
    Waiting(Instant),
    /// Written.
    Written(FlushReport),
    /// The database failed; the hits are kept until the retry time.
    Failed { error: String, retry_at: Instant },
}

/// Running totals since start, for tests, benchmarks and the status line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Frames received.
    pub received: u64,
    /// Frames that did not decode, or hits the tables cannot hold.
    pub invalid: u64,
    /// Hits dropped because the buffer was full.
    pub dropped: u64,
    /// Hits the server refused.
    pub refused: u64,
    /// Hits committed, per kind ([`LogType::index`]).
    pub written: [u64; 5],
    /// Successful flushes.
    pub flushes: u64,
    /// Transactions committed.
    pub transactions: u64,
    /// Round trips made by flushes (successful or not).
    pub round_trips: u64,
    /// Flushes that failed.
    pub failures: u64,
}

impl Totals {
    pub fn written_total(&self) -> u64 {
        self.written.iter().sum()
    }
}

/// Counters of the current minute.
#[derive(Debug, Clone, Default)]
struct Minute {
    written: [u64; 5],
    invalid: u64,
    dropped: u64,
    refused: u64,
    logged: u32,
}

/// A flush whose COMMIT went unanswered: its transaction, the hits at the
/// front of the buffer it held, and how often the server could not tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InDoubt {
    txid: i64,
    hits: usize,
    asked: u32,
}

impl InDoubt {
    /// The transaction `txid` if there was one (the connection may have
    /// broken before it had an id).
    fn of(txid: Option<i64>, hits: usize) -> Option<InDoubt> {
        txid.map(|txid| InDoubt {
            txid,
            hits,
            asked: 0,
        })
    }
}

/// The lumberjack task.
#[derive(Debug)]
pub struct Lumberjack {
    buffer: VecDeque<Hit>,
    capacity: usize,
    paused: bool,
    retry_at: Option<Instant>,
    /// A flush whose COMMIT went unanswered.
    in_doubt: Option<InDoubt>,
    /// Set while the database is failing: the error first seen.
    outage: Option<String>,
    /// Hits dropped since the buffer last had room.
    dropping: u64,
    downloads_unreported: u64,
    minute: Minute,
    totals: Totals,
}

impl Default for Lumberjack {
    fn default() -> Self {
        Lumberjack::new()
    }
}

impl Lumberjack {
    /// A lumberjack holding up to [`CAPACITY`] hits.
    pub fn new() -> Lumberjack {
        Lumberjack::with_capacity(CAPACITY)
    }

    /// A lumberjack holding up to `capacity` hits (tests use small ones).
    pub fn with_capacity(capacity: usize) -> Lumberjack {
        Lumberjack {
            buffer: VecDeque::new(),
            capacity,
            paused: false,
            retry_at: None,
            in_doubt: None,
            outage: None,
            dropping: 0,
            downloads_unreported: 0,
            minute: Minute::default(),
            totals: Totals::default(),
        }
    }

    /// Hits waiting to be written.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    /// Totals since start.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Stops writing (hits are still accepted up to the bound).
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Writes again from the next flush.
    pub fn resume(&mut self) {
        self.paused = false;
    }

    fn complain(&mut self, what: std::fmt::Arguments<'_>) {
        if self.minute.logged < LOG_LIMIT {
            self.minute.logged += 1;
            log::warn!(target: target::LUMBERJACK, "{what}");
            if self.minute.logged == LOG_LIMIT {
                log::warn!(
                    target: target::LUMBERJACK,
                    "further bad hits this minute are counted, not shown"
                );
            }
        }
    }

    /// Takes up to `max` frames from the log queue without blocking;
    /// returns how many it took.
    pub fn drain(&mut self, socket: &zmq::Socket, max: usize) -> usize {
        for n in 0..max {
            let frame = match socket.recv_bytes(zmq::DONTWAIT) {
                Ok(frame) => frame,
                Err(zmq::Error::EAGAIN) => return n,
                Err(e) => {
                    log::error!(target: target::LUMBERJACK, "log queue: {e}");
                    return n;
                }
            };
            if socket.get_rcvmore().unwrap_or(false) {
                while socket.get_rcvmore().unwrap_or(false) {
                    let _ = socket.recv_bytes(zmq::DONTWAIT);
                }
                self.totals.received += 1;
                self.invalid(format_args!(
                    "log queue: invalid message structure (multi-part message)"
                ));
                continue;
            }
            self.on_frame(&frame);
        }
        max
    }

    fn invalid(&mut self, what: std::fmt::Arguments<'_>) {
        self.totals.invalid += 1;
        self.minute.invalid += 1;
        self.complain(what);
    }

    /// Handles one frame from the log queue.
    pub fn on_frame(&mut self, frame: &[u8]) {
        self.totals.received += 1;
        match LogMessage::decode(frame) {
            Ok(msg) => self.accept(msg),
            Err(e) => self.invalid(format_args!("log queue: {e}")),
        }
    }

    /// Handles one decoded message (counted as received).
    pub fn on_message(&mut self, msg: LogMessage) {
        self.totals.received += 1;
        self.accept(msg);
    }

    /// Takes a hit checked elsewhere (counted as received). A hit built
    /// by hand that its table cannot hold is dropped when the server
    /// refuses it.
    pub fn on_hit(&mut self, hit: Hit) {
        self.totals.received += 1;
        self.push(hit);
    }

    fn accept(&mut self, msg: LogMessage) {
        match Hit::from_message(msg) {
            Ok(hit) => self.push(hit),
            Err(why) => self.invalid(format_args!("log queue: dropping a hit: {why}")),
        }
    }

    fn push(&mut self, hit: Hit) {
        if self.buffer.len() >= self.capacity {
            if self.dropping == 0 {
                log::warn!(
                    target: target::LUMBERJACK,
                    "{} hits are waiting for the database{}; dropping new ones until it \
                     takes them",
                    self.buffer.len(),
                    if self.paused { " (paused)" } else { "" }
                );
            }
            self.dropping += 1;
            self.minute.dropped += 1;
            self.totals.dropped += 1;
            return;
        }
        self.buffer.push_back(hit);
    }

    /// Whether [`flush`](Lumberjack::flush) has work to do at `now`.
    pub fn flush_due(&self, now: Instant) -> bool {
        !self.buffer.is_empty() && !self.paused && self.retry_at.is_none_or(|t| t <= now)
    }

    /// When the loop should call [`flush`](Lumberjack::flush) even if no
    /// frame arrives: now if hits wait, the retry time after a failure,
    /// `None` when there is nothing to do (empty or paused).
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        if self.buffer.is_empty() || self.paused {
            None
        } else {
            Some(self.retry_at.unwrap_or(now).max(now))
        }
    }

    /// Writes up to [`FLUSH_MAX`] buffered hits in one transaction.
    pub fn flush(&mut self, db: &mut Database, now: Instant) -> Flush {
        if self.buffer.is_empty() {
            return Flush::Nothing;
        }
        if self.paused {
            return Flush::Paused;
        }
        if let Some(t) = self.retry_at {
            if t > now {
                return Flush::Waiting(t);
            }
        }
        self.write(db, now)
    }

    fn write(&mut self, db: &mut Database, now: Instant) -> Flush {
        if let Some(flush) = self.settle_in_doubt(db, now) {
            return flush;
        }
        let n = self.buffer.len().min(FLUSH_MAX);
        let batch = Batch::new(self.buffer.range(..n));
        let mut txid = None;
        let result = db.transaction(|db| db.log_hits(&batch, &mut txid));
        match result {
            Ok(statements) => {
                let report = FlushReport {
                    rows: n,
                    transactions: 1,
                    round_trips: statements + 2,
                    refused: 0,
                };
                self.committed(n, report);
                Flush::Written(report)
            }
            Err(DbError::Query(e)) if is_data_error(&e) => self.write_one_by_one(db, n, now),
            Err(e) => {
                // The connection went before COMMIT was answered: the hits
                // may be in. Asked before they are written again.
                if matches!(e, DbError::Lost(_)) {
                    self.in_doubt = InDoubt::of(txid, n);
                }
                self.failed(e, now)
            }
        }
    }

    /// Before writing after a lost connection: asks the server whether the
    /// transaction that was committing then got in, and if it did, counts
    /// its hits as written instead of writing them twice. Some(flush) when
    /// the answer has to wait (the database is still away, or the
    /// transaction is still finishing).
    fn settle_in_doubt(&mut self, db: &mut Database, now: Instant) -> Option<Flush> {
        let doubt = self.in_doubt.take()?;
        let n = doubt.hits;
        match db.hits_committed(doubt.txid) {
            Ok(Some(true)) => {
                log::warn!(
                    target: target::LUMBERJACK,
                    "the {n} hits whose commit went unanswered were saved; not writing them again"
                );
                let n = n.min(self.buffer.len());
                self.committed(
                    n,
                    FlushReport {
                        rows: n,
                        transactions: 1,
                        round_trips: 1,
                        refused: 0,
                    },
                );
                None
            }
            Ok(Some(false)) => None,
            Ok(None) if doubt.asked + 1 >= 3 => {
                log::warn!(
                    target: target::LUMBERJACK,
                    "cannot tell whether {n} hits were saved before the connection went; writing them again"
                );
                None
            }
            Ok(None) => {
                // Still finishing on the server, or forgotten: ask again
                // later, then write them again.
                self.in_doubt = Some(InDoubt {
                    asked: doubt.asked + 1,
                    ..doubt
                });
                self.retry_at = Some(now + RETRY_MIN);
                Some(Flush::Waiting(now + RETRY_MIN))
            }
            Err(e) if e.is_unavailable() || matches!(e, DbError::Lost(_)) => {
                self.in_doubt = Some(doubt);
                Some(self.failed(e, now))
            }
            Err(e) => {
                log::warn!(
                    target: target::LUMBERJACK,
                    "cannot ask whether {n} hits were saved ({e}); writing them again"
                );
                None
            }
        }
    }

    /// After a data error: each hit in its own transaction, dropping those
    /// the server refuses.
    fn write_one_by_one(&mut self, db: &mut Database, n: usize, now: Instant) -> Flush {
        let mut report = FlushReport::default();
        for _ in 0..n {
            let Some(hit) = self.buffer.front() else {
                break;
            };
            let batch = Batch::new(std::iter::once(hit));
            let mut txid = None;
            match db.transaction(|db| db.log_hits(&batch, &mut txid)) {
                Ok(statements) => {
                    report.round_trips += statements + 2;
                    report.transactions += 1;
                    report.rows += 1;
                    self.count_written(1);
                }
                Err(DbError::Query(e)) if is_data_error(&e) => {
                    let hit = self.buffer.pop_front();
                    log::error!(
                        target: target::LUMBERJACK,
                        "the database refused a hit ({}); dropped: {hit:?}",
                        crate::db::DbError::Query(e)
                    );
                    report.refused += 1;
                    self.totals.refused += 1;
                    self.minute.refused += 1;
                }
                Err(e) => {
                    if matches!(e, DbError::Lost(_)) {
                        self.in_doubt = InDoubt::of(txid, 1);
                    }
                    self.totals.round_trips += u64::from(report.round_trips);
                    self.totals.transactions += u64::from(report.transactions);
                    return self.failed(e, now);
                }
            }
        }
        self.totals.flushes += 1;
        self.totals.transactions += u64::from(report.transactions);
        self.totals.round_trips += u64::from(report.round_trips);
        self.recovered(report.rows);
        Flush::Written(report)
    }

    /// Moves `n` committed hits out of the buffer (front first).
    fn count_written(&mut self, n: usize) {
        for hit in self.buffer.drain(..n) {
            let k = hit.kind().index();
            self.totals.written[k] += 1;
            self.minute.written[k] += 1;
            if hit.kind() == LogType::Download {
                self.downloads_unreported += 1;
            }
        }
    }

    fn committed(&mut self, n: usize, report: FlushReport) {
        self.count_written(n);
        self.totals.flushes += 1;
        self.totals.transactions += u64::from(report.transactions);
        self.totals.round_trips += u64::from(report.round_trips);
        self.recovered(n);
    }

    fn recovered(&mut self, rows: usize) {
        self.retry_at = None;
        if self.outage.take().is_some() {
            log::warn!(
                target: target::LUMBERJACK,
                "the database is back: wrote {rows} waiting hits ({} still waiting){}",
                self.buffer.len(),
                if self.dropping > 0 {
                    format!("; {} hits were dropped while it was away", self.dropping)
                } else {
                    String::new()
                }
            );
        }
        if self.buffer.len() < self.capacity {
            self.dropping = 0;
        }
    }

    fn failed(&mut self, e: DbError, now: Instant) -> Flush {
        self.totals.failures += 1;
        let wait = match &e {
            DbError::Unavailable { retry_in, .. } => (*retry_in).max(RETRY_MIN),
            _ => RETRY_MIN,
        };
        let retry_at = now + wait;
        self.retry_at = Some(retry_at);
        let error = e.to_string();
        if self.outage.is_none() {
            log::error!(
                target: target::LUMBERJACK,
                "cannot write hits ({error}); keeping up to {} in memory and retrying",
                self.capacity
            );
            self.outage = Some(error.clone());
        }
        Flush::Failed { error, retry_at }
    }

    /// Every [`REPORT_INTERVAL`]: tells big_brother how many downloads were
    /// committed since the last report, and logs the minute's counts.
    pub fn report(&mut self, stats: &mut impl StatsSink) {
        stats.downloads(self.downloads_unreported);
        self.downloads_unreported = 0;
        let m = std::mem::take(&mut self.minute);
        if m.written.iter().any(|&n| n > 0) {
            let parts: Vec<String> = LogType::ALL
                .iter()
                .map(|t| format!("{} {}", m.written[t.index()], t.table()))
                .collect();
            log::info!(target: target::LUMBERJACK, "logged in the last minute: {}", parts.join(", "));
        }
        if m.invalid > 0 || m.refused > 0 {
            log::warn!(
                target: target::LUMBERJACK,
                "in the last minute: {} bad messages or hits dropped, {} refused by the database",
                m.invalid,
                m.refused
            );
        }
        if m.dropped > 0 {
            log::warn!(
                target: target::LUMBERJACK,
                "dropped {} hits in the last minute: the buffer of {} was full ({} waiting)",
                m.dropped,
                self.capacity,
                self.buffer.len()
            );
        }
    }

    /// At shutdown: writes what it can (paused or not) and says what is
    /// lost.
    pub fn shutdown(&mut self, db: &mut Database) {
        self.paused = false;
        self.retry_at = None;
        while !self.buffer.is_empty() {
            match self.write(db, Instant::now()) {
                Flush::Written(_) => {}
                _ => break,
            }
        }
        if !self.buffer.is_empty() {
            log::error!(
                target: target::LUMBERJACK,
                "{} hits could not be written before shutdown and are lost",
                self.buffer.len()
            );
        }
    }
}

/// SQLSTATE classes that blame the data (22 data exception, 23 integrity
/// constraint), not the server or its configuration.
fn is_data_error(e: &postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| c.code().starts_with("22") || c.code().starts_with("23"))
}

/// Hits in columns, one set of arrays per table.
#[derive(Default)]
struct Batch {
    downloads: AccessColumns,
    searches: AccessColumns,
    projects: HitColumns,
    jsons: HitColumns,
    pages: HitColumns,
}

#[derive(Default)]
struct AccessColumns {
    name: Vec<String>,
    host: Vec<IpAddr>,
    at: Vec<NaiveDateTime>,
    fields: [Vec<Option<String>>; 10],
}

impl AccessColumns {
    fn push(&mut self, a: &AccessLog) {
        self.name.push(a.name.clone());
        self.host.push(a.host);
        self.at.push(a.timestamp.naive_utc());
        for (col, v) in self.fields.iter_mut().zip([
            &a.arch,
            &a.distro_name,
            &a.distro_version,
            &a.os_name,
            &a.os_version,
            &a.py_name,
            &a.py_version,
            &a.installer_name,
            &a.installer_version,
            &a.setuptools_version,
        ]) {
            col.push(v.clone());
        }
    }
}

#[derive(Default)]
struct HitColumns {
    name: Vec<String>,
    host: Vec<IpAddr>,
    at: Vec<NaiveDateTime>,
    user_agent: Vec<Option<String>>,
}

impl HitColumns {
    fn push(&mut self, h: &HitLog) {
        self.name.push(h.name.clone());
        self.host.push(h.host);
        self.at.push(h.timestamp.naive_utc());
        self.user_agent.push(h.user_agent.clone());
    }
}

impl Batch {
    fn new<'a>(hits: impl Iterator<Item = &'a Hit>) -> Batch {
        let mut b = Batch::default();
        for hit in hits {
            match hit {
                Hit::Download(a) => b.downloads.push(a),
                Hit::Search(a) => b.searches.push(a),
                Hit::Project(h) => b.projects.push(h),
                Hit::Json(h) => b.jsons.push(h),
                Hit::Page(h) => b.pages.push(h),
            }
        }
        b
    }
}

/// Makes the commit asynchronous and returns the transaction's id, to ask
/// `txid_status` whether it committed if the answer to COMMIT is lost.
const ASYNC_COMMIT: &str = "SELECT set_config('synchronous_commit', 'off', true), txid_current()";

/// What `txid_status` says of a transaction whose COMMIT went unanswered.
const TX_STATUS: &str = "SELECT txid_status($1)";

// One statement per table: the stored function applied to every row of the
// parallel arrays (one array per argument; NULLs allowed in the optional ones).
const LOG_DOWNLOADS: &str = "SELECT log_download(n, ip, at, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10) \
    FROM unnest($1::text[], $2::inet[], $3::timestamp[], $4::text[], $5::text[], $6::text[], \
    $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[]) \
    AS h(n, ip, at, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10)";
const LOG_SEARCHES: &str = "SELECT log_search(n, ip, at, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10) \
    FROM unnest($1::text[], $2::inet[], $3::timestamp[], $4::text[], $5::text[], $6::text[], \
    $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[]) \
    AS h(n, ip, at, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10)";
const LOG_PROJECTS: &str = "SELECT log_project(n, ip, at, ua) \
    FROM unnest($1::text[], $2::inet[], $3::timestamp[], $4::text[]) AS h(n, ip, at, ua)";
const LOG_JSONS: &str = "SELECT log_json(n, ip, at, ua) \
    FROM unnest($1::text[], $2::inet[], $3::timestamp[], $4::text[]) AS h(n, ip, at, ua)";
const LOG_PAGES: &str = "SELECT log_page(n, ip, at, ua) \
    FROM unnest($1::text[], $2::inet[], $3::timestamp[], $4::text[]) AS h(n, ip, at, ua)";

impl Database {
    /// Writes a batch: one statement per non-empty table (after making the
    /// commit asynchronous). Returns the number of statements (round trips)
    /// made. Meant to run inside
    /// [`Database::transaction`].
    fn log_hits(&mut self, b: &Batch, txid: &mut Option<i64>) -> Result<u32, DbError> {
        // Hit counts are statistics: not waiting for the WAL flush at commit
        // (a crash may lose the last moments of hits, never corrupt
        // anything) takes the disk's fsync out of every poll-loop turn.
        let id: i64 = self.run(Retry::Unsafe, |c| {
            Ok(c.query_one(ASYNC_COMMIT, &[])?.get(1))
        })?;
        *txid = Some(id);
        let mut statements = 1;
        for (sql, cols) in [(LOG_DOWNLOADS, &b.downloads), (LOG_SEARCHES, &b.searches)] {
            if cols.name.is_empty() {
                continue;
            }
            let f = &cols.fields;
            self.run(Retry::Unsafe, |c| {
                c.execute(
                    sql,
                    &[
                        &cols.name, &cols.host, &cols.at, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5],
                        &f[6], &f[7], &f[8], &f[9],
                    ],
                )
            })?;
            statements += 1;
        }
        for (sql, cols) in [
            (LOG_PROJECTS, &b.projects),
            (LOG_JSONS, &b.jsons),
            (LOG_PAGES, &b.pages),
        ] {
            if cols.name.is_empty() {
                continue;
            }
            self.run(Retry::Unsafe, |c| {
                c.execute(sql, &[&cols.name, &cols.host, &cols.at, &cols.user_agent])
            })?;
            statements += 1;
        }
        Ok(statements)
    }

    /// Whether transaction `txid` committed: Some(true) or Some(false), or
    /// None while it is still running or when the server no longer knows
    /// (too old).
    fn hits_committed(&mut self, txid: i64) -> Result<Option<bool>, DbError> {
        let status: Option<String> = self.run(Retry::Safe, |c| {
            Ok(c.query_one(TX_STATUS, &[&txid])?.get(0))
        })?;
        Ok(match status.as_deref() {
            Some("committed") => Some(true),
            Some("aborted") => Some(false),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::tasks::Stat;
    use crate::protocol::{DownloadState, SearchState};
    use chrono::{TimeZone, Utc};

    fn ts() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap()
    }

    fn download(name: &str, host: &str) -> LogMessage {
        LogMessage::Download(DownloadState {
            filename: name.into(),
            host: host.into(),
            timestamp: ts(),
            client: ClientInfo {
                arch: Some("x".repeat(500)),
                installer_name: Some("a-very-long-installer-name".into()),
                py_name: Some("C\0Python".into()),
                ..ClientInfo::default()
            },
        })
    }

    fn page(name: &str) -> LogMessage {
        LogMessage::Page(PageHit {
            name: name.into(),
            host: "2001:db8::1".into(),
            timestamp: ts(),
            user_agent: "u".repeat(3000),
        })
    }

    #[test]
    fn hits_are_fitted_to_their_columns() {
        let Hit::Download(d) = Hit::from_message(download("a.whl", " 192.0.2.1 ")).unwrap() else {
            panic!()
        };
        assert_eq!(d.host, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(d.arch.unwrap().len(), 100);
        assert_eq!(d.installer_name.unwrap().len(), 20);
        assert_eq!(d.py_name.as_deref(), Some("C\u{fffd}Python"));
        let Hit::Page(p) = Hit::from_message(page("faq")).unwrap() else {
            panic!()
        };
        assert_eq!(p.user_agent.unwrap().len(), 2000);

        for (msg, why) in [
            (download("a.whl", "example.com"), "not an IP address"),
            (download("", "192.0.2.1"), "without a name"),
            (download(&"f".repeat(256), "192.0.2.1"), "256 characters"),
            (page(&"p".repeat(31)), "holds 30"),
            (
                LogMessage::Search(SearchState {
                    package: "p".repeat(201),
                    host: "::1".into(),
                    timestamp: ts(),
                    client: ClientInfo::default(),
                }),
                "holds 200",
            ),
        ] {
            let e = Hit::from_message(msg).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    /// A transaction of the test database's own, committed or not; its id.
    fn finished_transaction(tdb: &crate::testing::TestDb, commit: bool) -> i64 {
        let mut admin = tdb.admin();
        let mut tx = admin.transaction().unwrap();
        let id: i64 = tx.query_one("SELECT txid_current()", &[]).unwrap().get(0);
        if commit {
            tx.commit().unwrap();
        } else {
            tx.rollback().unwrap();
        }
        id
    }

    #[test]
    fn hits_whose_commit_went_unanswered_are_written_once() {
        let tdb = crate::testing::TestDb::new();
        let mut db = tdb.database();
        let pages = |tdb: &crate::testing::TestDb| -> i64 {
            tdb.admin()
                .query_one("SELECT count(*) FROM web_page_hits", &[])
                .unwrap()
                .get(0)
        };
        let now = Instant::now();
        let mut lj = Lumberjack::new();
        // Committed: the server has them, they are counted, not written.
        for _ in 0..3 {
            lj.on_message(page("home"));
        }
        lj.in_doubt = InDoubt::of(Some(finished_transaction(&tdb, true)), 2);
        assert!(matches!(lj.flush(&mut db, now), Flush::Written(_)));
        assert_eq!(pages(&tdb), 1, "only the hit after the two in doubt");
        assert_eq!(lj.totals().written_total(), 3);
        assert_eq!((lj.pending(), lj.in_doubt), (0, None));
        // Aborted: written again.
        for _ in 0..2 {
            lj.on_message(page("home"));
        }
        lj.in_doubt = InDoubt::of(Some(finished_transaction(&tdb, false)), 2);
        assert!(matches!(lj.flush(&mut db, now), Flush::Written(_)));
        assert_eq!(pages(&tdb), 3);
        // Unknown to the server (an id it never gave out is "in the
        // future", an error): written again rather than lost.
        lj.on_message(page("home"));
        lj.in_doubt = InDoubt::of(Some(i64::from(i32::MAX)), 1);
        assert!(matches!(lj.flush(&mut db, now), Flush::Written(_)));
        assert_eq!(pages(&tdb), 4);
    }

    #[test]
    fn bad_frames_and_hits_are_counted_not_fatal() {
        let mut lj = Lumberjack::new();
        lj.on_frame(b"\xff\xff");
        lj.on_frame(&crate::protocol::ControlMessage::Quit.encode());
        lj.on_frame(&download("a.whl", "nowhere").encode());
        lj.on_frame(&download("a.whl", "192.0.2.1").encode());
        let t = lj.totals();
        assert_eq!((t.received, t.invalid), (4, 3));
        assert_eq!(lj.pending(), 1);
    }

    #[test]
    fn the_buffer_is_bounded() {
        let mut lj = Lumberjack::with_capacity(3);
        lj.pause();
        for _ in 0..5 {
            lj.on_message(page("home"));
        }
        assert_eq!(lj.pending(), 3);
        assert_eq!(lj.totals().dropped, 2);
        let now = Instant::now();
        assert!(!lj.flush_due(now));
        assert_eq!(lj.next_deadline(now), None);
        lj.resume();
        assert!(lj.flush_due(now));
        assert_eq!(lj.next_deadline(now), Some(now));
    }

    #[test]
    fn reports_every_minute_even_with_nothing() {
        let mut lj = Lumberjack::new();
        let mut stats: Vec<Stat> = Vec::new();
        lj.report(&mut stats);
        assert_eq!(stats, [Stat::Downloads(0)]);
    }
}
