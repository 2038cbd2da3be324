//! cloud_gazer: follows PyPI's changelog into the database (piwheels 0.23
//! rules), without ever blocking the poll loop on the network.
//!
//! # Contract with the poll loop
//!
//! ```text
//! let mut gazer = CloudGazer::new(CloudGazerConfig::from_master(&config), &ctx, &mut db)?;
//! loop {
//!     // 1. include the gazer's socket in zmq::poll; sleep 0 ms while
//!     //    gazer.has_backlog() (it has work to finish in small slices)
//!     let items = [.., gazer.poll_item()];
//!     zmq::poll(&mut items, if gazer.has_backlog() { 0 } else { timeout });
//!     // 2. readable, or a backlog: apply what the PyPI worker finished
//!     if gazer_readable || gazer.has_backlog() {
//!         gazer.on_ready(Instant::now(), &mut db, &mut web, &mut skip);
//!     }
//!     // 3. every POLL_INTERVAL (10 s): start a changelog fetch if none
//!     //    is in flight
//!     if cloud_gazer_timer_due { gazer.on_timer(Instant::now(), &mut db, &mut web, &mut skip); }
//! }
//! gazer.pause(); gazer.resume();   // control SLEEP / WAKE
//! gazer.shutdown();                // joins the worker within ~2 s
//! ```
//!
//! * [`CloudGazer::on_timer`] (every 10 s) starts a `changelog_since_serial`
//!   fetch on the worker when none is in flight, fewer than
//!   `prefetch_below` events wait to be applied (so reading PyPI overlaps
//!   writing the database) and at least `poll_interval` has passed since
//!   the last one.
//!   It never touches the network itself.
//! * [`CloudGazer::on_ready`] takes what the worker finished. A changelog
//!   batch goes through the ordering buffer (epoch 628000, margin 2000,
//!   5-minute window) and the classifier (1000-entry de-duplication cache);
//!   the resulting events are applied to the database at most
//!   `chunk` per call, in few transactions: about one per slice. Removals
//!   keep 0.23's order (skip 'deleted', web `DelPkg` / `DelVer`, skip
//!   queue, then `delete_package` / `delete_version`): they are marked in
//!   the slice's transaction, announced after it commits, and deleted in
//!   the next one; a slice is split only where an event touches a package
//!   whose removal is still being announced. The
//!   serial is stored in the same transaction as the last events it covers,
//!   and never lowered. Descriptions are fetched afterwards, off the
//!   critical path, and stored (with a `Project` rewrite) as they arrive.
//! * [`CloudGazer::has_backlog`]: events are waiting; call `on_ready` again
//!   soon (after serving the other sockets).
//! * On any error (PyPI down, garbage, a database failure) the failure is
//!   logged once, nothing is half-applied beyond what the stored serial
//!   covers, and the next poll starts again from the stored serial.
//!
//! # The 0.23 rules, per event
//!
//! * Names are canonicalised (PEP 503); an event whose name or version is
//!   over 200 characters, empty, or holds a control character or `/` is
//!   skipped with a warning.
//! * remove (no version): skip 'deleted', forget the package, web
//!   `DelPkg`, skip queue, `delete_package`. With a version: the same with
//!   `skip_package_version`, `DelVer`, `delete_version`.
//! * Any other event: a package not seen yet is added (`add_new_package`
//!   with 'development mode' as the skip reason in dev mode) and, if new,
//!   rewritten (`Both`); aliases are recorded when PyPI's spelling differs
//!   from the canonical name (the canonical name at 1970-01-01, then the
//!   spelling at the event's time). With a version: yank / unyank, or
//!   `add_new_package_version` ('binary only' unless a source file), or a
//!   binary-only version re-enabled by a source file (`Project`); every
//!   other version event rewrites `Both`.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::config::master::MasterConfig;
use crate::db::{Database, DbError};
use crate::logging::target;
use crate::master::tasks::{SkipQueue, WebQueue, WebRequest};
use crate::pypi::client::{ClientConfig, FetchError, Lookup, PypiClient, Reply};
use crate::pypi::events::{Classifier, EventKind, PypiEvent};
use crate::pypi::xmlrpc::{ChangelogEntry, shorten};
use crate::pypi::{OrderingBuffer, canonicalize};

const LOG: &str = target::CLOUD_GAZER;

/// How often PyPI is polled (piwheels: every 10 s, one call at most).
pub const POLL_INTERVAL: Duration = Duration::from_secs(10);

/// Longest name or version piwheels accepts (the columns are VARCHAR(200)).
pub const MAX_NAME_CHARS: usize = 200;

/// The skip reason of new packages in development mode.
pub const DEV_MODE_SKIP: &str = "development mode";

/// Settings of a [`CloudGazer`].
#[derive(Debug, Clone)]
pub struct CloudGazerConfig {
    /// `--pypi-xmlrpc`.
    pub pypi_xmlrpc: String,
    /// `--pypi-json`.
    pub pypi_json: String,
    /// `--dev-mode`: new packages are skipped ('development mode').
    pub dev_mode: bool,
    /// Shortest time between two changelog fetches.
    pub poll_interval: Duration,
    /// Most events applied per `on_ready` call.
    pub chunk: usize,
    /// The next changelog batch is fetched while fewer events than this
    /// wait to be applied (so reading PyPI overlaps writing the database).
    pub prefetch_below: usize,
    /// The HTTP client's settings (timeouts, queues).
    pub client: ClientConfig,
}

impl CloudGazerConfig {
    /// Defaults for these endpoints: 10 s polls and timeouts, 1000 events
    /// per slice.
    pub fn new(pypi_xmlrpc: &str, pypi_json: &str) -> CloudGazerConfig {
        CloudGazerConfig {
            pypi_xmlrpc: pypi_xmlrpc.to_owned(),
            pypi_json: pypi_json.to_owned(),
            dev_mode: false,
            poll_interval: POLL_INTERVAL,
            chunk: 1000,
            prefetch_below: 10_000,
            client: ClientConfig::new(pypi_xmlrpc, pypi_json),
        }
    }

    /// From piw-master's options.
    pub fn from_master(config: &MasterConfig) -> CloudGazerConfig {
        let mut c = CloudGazerConfig::new(&config.pypi_xmlrpc, &config.pypi_json);
        c.dev_mode = config.dev_mode;
        c
    }
}

/// Why a [`CloudGazer`] could not start.
#[derive(Debug)]
pub enum CloudGazerError {
    /// The inproc socket pair could not be made.
    Zmq(zmq::Error),
    /// The serial or the package list could not be read.
    Db(DbError),
}

impl std::fmt::Display for CloudGazerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloudGazerError::Zmq(e) => write!(f, "cloud_gazer: cannot create its socket: {e}"),
            CloudGazerError::Db(e) => write!(f, "cloud_gazer: cannot read its state: {e}"),
        }
    }
}

impl std::error::Error for CloudGazerError {}

/// Figures for the status line and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GazerStats {
    /// The serial stored in the database (the next one to process).
    pub serial: i64,
    /// Changelog entries held by the ordering buffer.
    pub buffered: usize,
    /// Events waiting to be applied.
    pub backlog: usize,
    /// Events applied since start.
    pub applied: u64,
    /// Events skipped as invalid since start.
    pub rejected: u64,
    /// Changelog fetches that failed since start.
    pub fetch_failures: u64,
    /// Batches rolled back since start.
    pub db_failures: u64,
    /// Descriptions stored since start.
    pub descriptions: u64,
    /// The latest failure, as logged.
    pub last_error: Option<String>,
}

/// A hasher for keys that are already hashes.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// The names of every package in the database, as 64-bit hashes: 9 bytes
/// a package instead of about 60, which matters at 600,000 packages on a
/// Pi. A collision can only make a new package look known; the version
/// insert that follows then fails, and the retry checks every package
/// (see `verify`), so it costs one slow batch, never a wrong row.
#[derive(Debug, Default)]
struct PackageSet(HashSet<u64, BuildHasherDefault<PassThrough>>);

impl PackageSet {
    fn key(name: &str) -> u64 {
        // SipHash with fixed keys: stable within a run, which is all we need.
        let mut h = DefaultHasher::new();
        name.hash(&mut h);
        h.finish()
    }
    fn contains(&self, name: &str) -> bool {
        self.0.contains(&Self::key(name))
    }
    fn insert(&mut self, name: &str) {
        self.0.insert(Self::key(name));
    }
    fn remove(&mut self, name: &str) {
        self.0.remove(&Self::key(name));
    }
}

/// A removal between its two transactions.
#[derive(Debug, Clone)]
enum Removal {
    Package(String),
    Version(String, String),
}

impl Removal {
    fn package(&self) -> &str {
        match self {
            Removal::Package(p) | Removal::Version(p, _) => p,
        }
    }

    fn finish(&self, db: &mut Database) -> Result<(), DbError> {
        match self {
            Removal::Package(p) => db.delete_package(p),
            Removal::Version(p, v) => db.delete_version(p, v),
        }
    }
}

/// What one transaction's events ask of others, sent after it commits.
#[derive(Debug, Default)]
struct Segment {
    /// Rewrites in first-request order; true: `Both`, false: `Project`.
    web: Vec<(String, bool)>,
    web_index: HashMap<String, usize>,
    /// (canonical, spelling) → latest time seen.
    aliases: Vec<(String, String, i64)>,
    alias_index: HashMap<(String, String), usize>,
    /// Packages whose description should be (re)fetched.
    describe: Vec<String>,
    /// Removals marked in this transaction, to finish after it.
    removals: Vec<Removal>,
    /// Their packages: an event about one of them ends the transaction.
    removed: HashSet<String>,
}

impl Segment {
    fn web(&mut self, package: &str, both: bool) {
        match self.web_index.get(package) {
            Some(&i) => self.web[i].1 |= both,
            None => {
                self.web_index.insert(package.to_owned(), self.web.len());
                self.web.push((package.to_owned(), both));
            }
        }
    }

    fn alias(&mut self, canon: &str, name: &str, ts: i64) {
        let key = (canon.to_owned(), name.to_owned());
        match self.alias_index.get(&key) {
            Some(&i) => self.aliases[i].2 = ts,
            None => {
                self.alias_index.insert(key, self.aliases.len());
                self.aliases.push((canon.to_owned(), name.to_owned(), ts));
            }
        }
    }

    /// Writes the aliases gathered so far (inside the transaction).
    fn flush_aliases(&mut self, db: &mut Database) -> Result<(), DbError> {
        let mut canon_done: HashSet<&str> = HashSet::new();
        for (canon, name, ts) in &self.aliases {
            if canon_done.insert(canon) {
                db.add_package_name(canon, canon, None)?;
            }
            db.add_package_name(canon, name, Some(utc(*ts)))?;
        }
        self.aliases.clear();
        self.alias_index.clear();
        Ok(())
    }
}

fn utc(ts: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(ts, 0).unwrap_or_default()
}

/// Why an event is not acceptable, if it is not.
fn invalid(name: &str, canon: &str, version: Option<&str>) -> Option<String> {
    let bad_chars = |s: &str| s.chars().any(|c| c.is_control() || c == '/');
    if name.is_empty() || canon.is_empty() {
        return Some("an empty name".into());
    }
    if name.chars().count() > MAX_NAME_CHARS || canon.chars().count() > MAX_NAME_CHARS {
        return Some(format!("a name longer than {MAX_NAME_CHARS} characters"));
    }
    if bad_chars(name) {
        return Some("a control character or '/' in the name".into());
    }
    if let Some(v) = version {
        if v.is_empty() {
            return Some("an empty version".into());
        }
        if v.chars().count() > MAX_NAME_CHARS {
            return Some(format!("a version longer than {MAX_NAME_CHARS} characters"));
        }
        if bad_chars(v) {
            return Some("a control character or '/' in the version".into());
        }
    }
    None
}

/// Logs a run of identical failures once (then at debug level), and the
/// recovery.
#[derive(Debug, Default)]
struct Complaint {
    last: Option<String>,
    repeats: u64,
}

impl Complaint {
    fn fail(&mut self, kind: String, message: &str) {
        if self.last.as_deref() == Some(kind.as_str()) {
            self.repeats += 1;
            log::debug!(target: LOG, "{message} (again, {} times)", self.repeats + 1);
        } else {
            log::warn!(target: LOG, "{message}");
            self.last = Some(kind);
            self.repeats = 0;
        }
    }

    fn ok(&mut self, what: &str) {
        if self.last.take().is_some() {
            log::info!(target: LOG, "{what} again (after {} failures)", self.repeats + 1);
        }
        self.repeats = 0;
    }
}

/// The cloud_gazer task; see the module documentation.
pub struct CloudGazer {
    config: CloudGazerConfig,
    client: PypiClient,
    buffer: OrderingBuffer,
    classifier: Classifier,
    packages: PackageSet,
    /// The serial in the database.
    stored: i64,
    /// The serial to store once the backlog is applied.
    target: i64,
    /// Events waiting to be applied.
    backlog: VecDeque<PypiEvent>,
    /// Replies taken while paused.
    stash: Vec<Reply>,
    /// State must be read again from the database before going on.
    reload: bool,
    /// Check every package with `add_new_package` (after a failure).
    verify: bool,
    paused: bool,
    next_poll: Instant,
    skip_default: &'static str,
    fetch_complaint: Complaint,
    db_complaint: Complaint,
    stats: GazerStats,
}

impl std::fmt::Debug for CloudGazer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudGazer")
            .field("stats", &self.stats())
            .field("paused", &self.paused)
            .finish()
    }
}

impl CloudGazer {
    /// Starts the PyPI worker and reads the stored serial and the package
    /// list (piwheels' `once()`).
    pub fn new(
        config: CloudGazerConfig,
        ctx: &zmq::Context,
        db: &mut Database,
    ) -> Result<CloudGazer, CloudGazerError> {
        let mut client_config = config.client.clone();
        client_config.xmlrpc_url = config.pypi_xmlrpc.clone();
        client_config.json_url = config.pypi_json.clone();
        let client = PypiClient::new(client_config, ctx).map_err(CloudGazerError::Zmq)?;
        let mut gazer = CloudGazer {
            skip_default: if config.dev_mode { DEV_MODE_SKIP } else { "" },
            config,
            client,
            buffer: OrderingBuffer::new(0),
            classifier: Classifier::default(),
            packages: PackageSet::default(),
            stored: 0,
            target: 0,
            backlog: VecDeque::new(),
            stash: Vec::new(),
            reload: true,
            verify: false,
            paused: false,
            next_poll: Instant::now(),
            fetch_complaint: Complaint::default(),
            db_complaint: Complaint::default(),
            stats: GazerStats::default(),
        };
        log::info!(target: LOG, "retrieving current state");
        gazer.load(db).map_err(CloudGazerError::Db)?;
        log::info!(target: LOG, "querying upstream from serial {}", gazer.stored);
        Ok(gazer)
    }

    /// Reads the serial and the package set.
    fn load(&mut self, db: &mut Database) -> Result<(), DbError> {
        let serial = db.get_pypi_serial()?;
        let mut packages = PackageSet::default();
        db.for_each_package(|p| packages.insert(p))?;
        self.packages = packages;
        self.stored = serial;
        self.target = serial;
        self.buffer.set_serial(serial);
        self.classifier.clear();
        self.backlog.clear();
        self.reload = false;
        Ok(())
    }

    /// The worker's wake-up socket (readable: call [`CloudGazer::on_ready`]).
    pub fn socket(&self) -> &zmq::Socket {
        self.client.socket()
    }

    /// A `POLLIN` item for [`CloudGazer::socket`].
    pub fn poll_item(&self) -> zmq::PollItem<'_> {
        self.client.poll_item()
    }

    /// True while work is waiting: call [`CloudGazer::on_ready`] again
    /// without sleeping (after serving the other sockets).
    pub fn has_backlog(&self) -> bool {
        !self.paused
            && !self.reload
            && (!self.backlog.is_empty() || self.target > self.stored || !self.stash.is_empty())
    }

    /// No fetch in flight and nothing waiting (for tests and shutdown).
    pub fn is_idle(&self) -> bool {
        !self.client.changelog_in_flight() && !self.has_backlog() && self.stash.is_empty()
    }

    /// Descriptions queued or being fetched.
    pub fn descriptions_pending(&self) -> usize {
        self.client.descriptions_pending()
    }

    /// The serial stored in the database, as far as we know.
    pub fn stored_serial(&self) -> i64 {
        self.stored
    }

    /// Current figures.
    pub fn stats(&self) -> GazerStats {
        GazerStats {
            serial: self.stored,
            buffered: self.buffer.buffered(),
            backlog: self.backlog.len(),
            ..self.stats.clone()
        }
    }

    /// Stops fetching and applying (control SLEEP); results that arrive
    /// meanwhile are kept.
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Resumes after [`CloudGazer::pause`].
    pub fn resume(&mut self) {
        self.paused = false;
    }

    /// Stops the worker (interrupting a request in flight).
    pub fn shutdown(self) {
        self.client.shutdown();
    }

    /// Every [`POLL_INTERVAL`]: starts a changelog fetch if none is in
    /// flight and nothing is waiting. Never blocks on the network.
    pub fn on_timer(
        &mut self,
        now: Instant,
        db: &mut Database,
        _web: &mut impl WebQueue,
        _skip: &mut impl SkipQueue,
    ) {
        if self.paused {
            return;
        }
        if self.reload {
            match self.load(db) {
                Ok(()) => {
                    self.db_complaint.ok("read the state from the database");
                }
                Err(e) => {
                    self.db_complaint.fail(
                        format!("load {}", e.is_unavailable()),
                        &format!("cannot read state: {e}"),
                    );
                    return;
                }
            }
        }
        if self.backlog.len() >= self.config.prefetch_below
            || !self.stash.is_empty()
            || self.client.changelog_in_flight()
            || now < self.next_poll
        {
            return;
        }
        self.next_poll = now + self.config.poll_interval;
        self.client.fetch_changelog(self.buffer.request_serial());
    }

    /// Takes what the worker finished and applies up to `chunk` events.
    /// Call when the socket is readable or [`CloudGazer::has_backlog`].
    pub fn on_ready(
        &mut self,
        _now: Instant,
        db: &mut Database,
        web: &mut impl WebQueue,
        skip: &mut impl SkipQueue,
    ) {
        let replies = self.client.on_ready();
        self.stash.extend(replies);
        if self.paused || self.reload {
            // Keep them; a reload must not mix old batches with new state.
            if self.reload {
                self.stash
                    .retain(|r| matches!(r, Reply::Description { .. }));
            }
            return;
        }
        let mut described: Vec<(String, String)> = Vec::new();
        for reply in std::mem::take(&mut self.stash) {
            match reply {
                Reply::Changelog {
                    since,
                    result,
                    elapsed,
                } => self.on_changelog(since, result, elapsed),
                Reply::Description { package, result } => match result {
                    Ok(d) => described.push((package, d)),
                    Err(e) => self.no_description(&package, &e),
                },
            }
        }
        if !self.backlog.is_empty() || self.target > self.stored {
            let wanted = self.apply_chunk(db, web, skip);
            for p in wanted {
                if let Lookup::Cached(d) = self.client.request_description(&p) {
                    described.push((p, d));
                }
            }
        }
        if !described.is_empty() {
            self.store_descriptions(described, db, web);
        }
    }

    fn no_description(&self, package: &str, e: &FetchError) {
        // 0.23 gives None for timeouts, connection errors, redirects, 5xx,
        // 404 and 408; it raised on others, which we only log louder.
        let expected = match e {
            FetchError::Status(s) => *s >= 500 || *s == 404 || *s == 408,
            FetchError::Timeout(_) | FetchError::Transport(_) | FetchError::Shutdown => true,
            FetchError::Fault { .. } | FetchError::Malformed(_) => false,
        };
        if expected {
            log::debug!(target: LOG, "no description for {package}: {e}");
        } else {
            log::warn!(target: LOG, "no description for {package}: {e}");
        }
    }

    fn on_changelog(
        &mut self,
        since: i64,
        result: Result<Vec<ChangelogEntry>, FetchError>,
        elapsed: Duration,
    ) {
        let entries = match result {
            Ok(entries) => entries,
            Err(e) => {
                self.stats.fetch_failures += 1;
                let message = if e.is_rate_limited() {
                    format!("PyPI is rate limiting us; trying again later ({e})")
                } else {
                    format!("cannot read PyPI's changelog since serial {since}: {e}")
                };
                self.fetch_complaint.fail(e.kind(), &message);
                self.stats.last_error = Some(message);
                return;
            }
        };
        self.fetch_complaint.ok("reading PyPI's changelog");
        if since != self.buffer.request_serial() {
            // Asked before a reset: the buffer has moved on.
            log::debug!(target: LOG, "dropping a stale changelog batch (since {since})");
            return;
        }
        let n = entries.len();
        let yielded = self.buffer.push(entries);
        log::debug!(
            target: LOG,
            "read {n} changelog entries since {since} in {:.1}s; {} ready, {} held",
            elapsed.as_secs_f64(),
            yielded.len(),
            self.buffer.buffered()
        );
        if yielded.is_empty() {
            return;
        }
        let (n, before) = (yielded.len(), self.backlog.len());
        for entry in yielded {
            if let Some(event) = self.classifier.classify(entry) {
                self.backlog.push_back(event);
            }
        }
        log::debug!(
            target: LOG,
            "{} events to apply; {} ignored (other actions, or repeated files)",
            self.backlog.len() - before,
            n - (self.backlog.len() - before)
        );
        self.target = self.target.max(self.buffer.serial());
    }

    /// Applies up to `chunk` events (and stores the serial with the last
    /// ones). Returns the packages whose description is wanted.
    fn apply_chunk(
        &mut self,
        db: &mut Database,
        web: &mut impl WebQueue,
        skip: &mut impl SkipQueue,
    ) -> Vec<String> {
        let n = self.config.chunk.max(1).min(self.backlog.len());
        let events: Vec<PypiEvent> = self.backlog.drain(..n).collect();
        let serial = self.backlog.is_empty().then_some(self.target);
        let mut wanted = Vec::new();
        match self.apply_events(&events, serial, db, web, skip, &mut wanted) {
            Ok(()) => {
                self.stats.applied += events.len() as u64;
                if let Some(s) = serial {
                    self.stored = self.stored.max(s);
                    self.verify = false;
                }
                self.db_complaint.ok("writing to the database");
                wanted
            }
            Err(e) => {
                self.stats.db_failures += 1;
                let message = format!(
                    "cannot apply PyPI events (will read them again from serial {}): {e}",
                    self.stored
                );
                self.db_complaint
                    .fail(format!("apply {}", e.is_unavailable()), &message);
                self.stats.last_error = Some(message);
                // Everything since the stored serial is read again, with a
                // fresh package set, checking every package.
                self.backlog.clear();
                self.reload = true;
                self.verify = true;
                self.next_poll = Instant::now();
                Vec::new()
            }
        }
    }

    /// Applies `events` in as few transactions as 0.23's removal order
    /// allows: a removal is marked (skip 'deleted') in the transaction of
    /// the events around it; after that commits, the web output and the
    /// slave driver are told, and the next transaction deletes the rows.
    /// A transaction ends early only when an event touches a package whose
    /// removal is still waiting for that.
    fn apply_events(
        &mut self,
        events: &[PypiEvent],
        serial: Option<i64>,
        db: &mut Database,
        web: &mut impl WebQueue,
        skip: &mut impl SkipQueue,
        wanted: &mut Vec<String>,
    ) -> Result<(), DbError> {
        let mut i = 0;
        let mut finishing: Vec<Removal> = Vec::new();
        let stored = self.stored;
        loop {
            let mut seg = Segment::default();
            let done = db.transaction(|db| {
                for r in &finishing {
                    r.finish(db)?;
                }
                while let Some(event) = events.get(i) {
                    let canon = canonicalize(&event.name);
                    if seg.removed.contains(&canon) {
                        break;
                    }
                    i += 1;
                    if let Some(removal) = self.apply_event(event, canon, db, &mut seg)? {
                        seg.removed.insert(removal.package().to_owned());
                        seg.removals.push(removal);
                    }
                }
                seg.flush_aliases(db)?;
                let done = i >= events.len() && seg.removals.is_empty();
                if done {
                    if let Some(s) = serial.filter(|&s| s > stored) {
                        db.set_pypi_serial(s)?;
                    }
                }
                Ok(done)
            })?;
            for (package, both) in std::mem::take(&mut seg.web) {
                let req = if both {
                    WebRequest::Both(package)
                } else {
                    WebRequest::Project(package)
                };
                web.request(req, db);
            }
            wanted.append(&mut seg.describe);
            for removal in &seg.removals {
                match removal {
                    Removal::Package(p) => {
                        web.request(WebRequest::DelPkg(p.clone()), db);
                        skip.skip_package(p);
                    }
                    Removal::Version(p, v) => {
                        web.request(WebRequest::DelVer(p.clone(), v.clone()), db);
                        skip.skip_version(p, v);
                    }
                }
            }
            if done {
                return Ok(());
            }
            finishing = seg.removals;
        }
    }

    /// One event, inside the caller's transaction. A removal is marked
    /// (skip 'deleted') and returned for the caller to finish.
    fn apply_event(
        &mut self,
        event: &PypiEvent,
        canon: String,
        db: &mut Database,
        seg: &mut Segment,
    ) -> Result<Option<Removal>, DbError> {
        let version = event.version.as_deref();
        if let Some(why) = invalid(&event.name, &canon, version) {
            self.stats.rejected += 1;
            log::warn!(
                target: LOG,
                "ignoring PyPI event {} ({:?} of {:?} {:?}): {why}",
                event.serial,
                event.kind,
                shorten(&event.name, 60),
                version.map(|v| shorten(v, 60))
            );
            return Ok(None);
        }
        if event.kind == EventKind::Remove {
            return Ok(Some(match version {
                None => {
                    log::info!(target: LOG, "marking package {canon} for deletion");
                    db.skip_package(&canon, "deleted")?;
                    self.packages.remove(&canon);
                    Removal::Package(canon)
                }
                Some(v) => {
                    log::info!(target: LOG, "marking package {canon} version {v} for deletion");
                    db.skip_package_version(&canon, v, "deleted")?;
                    Removal::Version(canon, v.to_owned())
                }
            }));
        }
        let describable = matches!(
            event.kind,
            EventKind::Create | EventKind::Source | EventKind::Binary
        );
        let known = self.packages.contains(&canon);
        if !known || self.verify {
            self.packages.insert(&canon);
            if db.add_new_package(&canon, self.skip_default, "")? {
                log::info!(target: LOG, "added package {canon}");
                seg.web(&canon, true);
                if describable {
                    seg.describe.push(canon.clone());
                }
            } else if !known && describable {
                // Known to the database but new to us: refresh it (0.23
                // sets the description it fetched).
                seg.describe.push(canon.clone());
            }
        }
        if *event.name != *canon {
            seg.alias(&canon, &event.name, event.timestamp);
        }
        let Some(v) = version else {
            return Ok(None);
        };
        let mut both = true;
        match event.kind {
            EventKind::Yank => {
                db.yank_version(&canon, v)?;
                log::info!(target: LOG, "yanked package {canon} version {v}");
            }
            EventKind::Unyank => {
                db.unyank_version(&canon, v)?;
                log::info!(target: LOG, "unyanked package {canon} version {v}");
            }
            _ => {
                let source = event.kind == EventKind::Source;
                let skip = if source { "" } else { "binary only" };
                if db.add_new_package_version(&canon, v, Some(utc(event.timestamp)), skip)? {
                    log::info!(target: LOG, "added package {canon} version {v}");
                    if !source {
                        log::info!(
                            target: LOG,
                            "disabled package {canon} version {v} (binary only)"
                        );
                    }
                    seg.describe.push(canon.clone());
                } else if source
                    && db.get_version_skip(&canon, v)?.as_deref() == Some("binary only")
                {
                    db.skip_package_version(&canon, v, "")?;
                    log::info!(target: LOG, "enabled package {canon} version {v}");
                    both = false;
                }
            }
        }
        seg.web(&canon, both);
        Ok(None)
    }

    /// Stores descriptions that arrived (one transaction) and asks for the
    /// project pages to be rewritten with them.
    fn store_descriptions(
        &mut self,
        described: Vec<(String, String)>,
        db: &mut Database,
        web: &mut impl WebQueue,
    ) {
        let result = db.transaction(|db| {
            for (package, description) in &described {
                db.set_package_description(package, description)?;
            }
            Ok(())
        });
        match result {
            Ok(()) => {
                self.stats.descriptions += described.len() as u64;
                for (package, _) in described {
                    web.request(WebRequest::Project(package), db);
                }
            }
            Err(e) => log::warn!(
                target: LOG,
                "cannot store {} descriptions (they will come with later releases): {e}",
                described.len()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert!(invalid("foo", "foo", Some("1.0")).is_none());
        assert!(invalid("foo", "foo", None).is_none());
        assert!(invalid("", "", None).is_some());
        assert!(invalid(&"x".repeat(201), &"x".repeat(201), None).is_some());
        assert!(invalid(&"x".repeat(200), &"x".repeat(200), Some(&"1".repeat(200))).is_none());
        assert!(invalid("foo", "foo", Some(&"1".repeat(201))).is_some());
        assert!(invalid("fo\u{1}o", "fo\u{1}o", None).is_some());
        assert!(invalid("fo\u{0}o", "fo\u{0}o", None).is_some());
        assert!(invalid("../etc", "-/etc", None).is_some());
        assert!(invalid("foo", "foo", Some("1.0\n")).is_some());
        assert!(invalid("foo", "foo", Some("")).is_some());
        // characters, not bytes
        assert!(invalid(&"é".repeat(200), &"é".repeat(200), None).is_none());
    }

    #[test]
    fn segments_merge_requests_in_order() {
        let mut s = Segment::default();
        s.web("b", false);
        s.web("a", false);
        s.web("b", true);
        s.web("a", false);
        assert_eq!(s.web, vec![("b".to_owned(), true), ("a".to_owned(), false)]);
        s.alias("foo-bar", "Foo_Bar", 5);
        s.alias("foo-bar", "Foo_Bar", 7);
        s.alias("foo-bar", "Foo.Bar", 6);
        assert_eq!(
            s.aliases,
            vec![
                ("foo-bar".to_owned(), "Foo_Bar".to_owned(), 7),
                ("foo-bar".to_owned(), "Foo.Bar".to_owned(), 6)
            ]
        );
    }

    #[test]
    fn package_set() {
        let mut s = PackageSet::default();
        assert!(!s.contains("foo"));
        s.insert("foo");
        assert!(s.contains("foo") && !s.contains("bar"));
        s.remove("foo");
        assert!(!s.contains("foo"));
    }
}
