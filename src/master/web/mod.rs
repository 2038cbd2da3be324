//! The web site: the_secretary's buffer, the_scribe's pages and the
//! [`Web`] facade the master loop owns.
//!
//! # The contract with the master loop
//!
//! ```text
//! let mut web = Web::new(WebConfig { .. });
//! web.start(&mut db, Instant::now(), now_utc())?;      // once, before the loop
//! loop {
//!     // sleep in zmq::poll until at most web.next_deadline()
//!     web.on_timer(Instant::now(), now_utc(), &mut db); // when due (cheap otherwise)
//!     // other tasks call web.request(WebRequest::…, &mut db) (WebQueue)
//!     // big_brother calls web.homepage(..) / web.search_index(..) (SitePages)
//! }
//! web.shutdown(&mut db);                                // saves the buffer
//! ```
//!
//! * `Project`/`Both` requests are buffered (60 s, 3 s in dev mode) and
//!   written by `on_timer`, at most [`FLUSH_CHUNK`] packages per call, so
//!   the loop keeps serving sockets between chunks; `next_deadline` is in
//!   the past while more is due.
//! * `DelPkg`, `DelVer` and `Log` are carried out inside `request`.
//! * `pause`/`resume` stop and restart the flushing only (requests are
//!   still accepted, deletions and logs still written).
//! * [`Web::start_full_rewrite`] rewrites every package's pages, a chunk
//!   of [`REWRITE_CHUNK`] packages per `on_timer` call (piw-rebuild).
//!
//! Errors never end the loop: they are logged, and writes that failed
//! because the database was unreachable are retried 10 s later.

pub mod pages;
pub mod scribe;
pub mod secretary;
pub mod text;
pub mod version;
pub mod writer;

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::db::{Database, DbError, RewriteCommand};
use crate::logging::target;
use crate::master::big_brother::SitePages;
use crate::master::tasks::{WebQueue, WebRequest};
use crate::protocol::MasterStats;
pub use pages::Site;
pub use scribe::Scribe;
pub use secretary::Secretary;

/// Packages written per `on_timer` call when flushing the buffer.
pub const FLUSH_CHUNK: usize = 250;

/// Packages written per `on_timer` call during a full rewrite.
pub const REWRITE_CHUNK: usize = 1000;

/// Files a full rewrite collects before it hands them to [`Committer`].
const COMMIT_FILES: usize = 1000;

/// How long the buffer holds a request.
pub const DELAY: Duration = Duration::from_secs(60);

/// The same in dev mode.
pub const DEV_DELAY: Duration = Duration::from_secs(3);

/// The longest a buffer change not acknowledged to a peer (PyPI's, the
/// scribe's own) waits before it is saved to `rewrites_pending`.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Wait before retrying writes that failed for want of the database.
const RETRY: Duration = Duration::from_secs(10);

/// The web site's settings.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Where the site is written (`--output-path`).
    pub output_path: PathBuf,
    /// Hold rewrite requests 3 s instead of 60 s (`--dev-mode`).
    pub dev_mode: bool,
    /// The site's public URL, used in canonical links, sitemaps and the
    /// JSON API; a trailing `/` is added if missing.
    pub base_url: String,
    /// The site's name, in page titles and the header.
    pub title: String,
    /// A GitHub-style issue tracker for package problems, linked from each
    /// project page; empty for none.
    pub issues_url: String,
}

impl WebConfig {
    /// The defaults for `output_path`: `http://<host name>/` as the base
    /// URL, "piwheels" as the title, no issue tracker.
    pub fn new(output_path: PathBuf) -> WebConfig {
        WebConfig {
            output_path,
            dev_mode: false,
            base_url: format!("http://{}/", crate::info::hostname()),
            title: "piwheels".to_owned(),
            issues_url: String::new(),
        }
    }

    fn site(&self) -> Site {
        let mut base_url = self.base_url.trim().to_owned();
        if !base_url.ends_with('/') {
            base_url.push('/');
        }
        Site {
            title: self.title.clone(),
            base_url,
            issues_url: self.issues_url.trim_end_matches('/').to_owned(),
        }
    }
}

/// Why a write failed.
#[derive(Debug)]
pub enum WebError {
    Io(std::io::Error),
    Db(DbError),
    Template(askama::Error),
    /// A package name that cannot be a directory name (`/`, `..`, NUL).
    BadName(String),
    /// The database's document could not be read.
    Data(String),
}

impl fmt::Display for WebError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebError::Io(e) => write!(f, "{e}"),
            WebError::Db(e) => write!(f, "{e}"),
            WebError::Template(e) => write!(f, "template: {e}"),
            WebError::BadName(n) => write!(f, "unsafe package name {n:?}"),
            WebError::Data(e) => write!(f, "bad project data: {e}"),
        }
    }
}

impl std::error::Error for WebError {}

impl From<std::io::Error> for WebError {
    fn from(e: std::io::Error) -> Self {
        WebError::Io(e)
    }
}

impl From<DbError> for WebError {
    fn from(e: DbError) -> Self {
        WebError::Db(e)
    }
}

impl From<askama::Error> for WebError {
    fn from(e: askama::Error) -> Self {
        WebError::Template(e)
    }
}

impl WebError {
    fn is_unavailable(&self) -> bool {
        matches!(self, WebError::Db(e) if e.is_unavailable())
    }
}

/// Counts of what was written, for logs, tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Project pages written (each with its JSON).
    pub projects: u64,
    /// Simple pages written (each with its PEP 691 JSON).
    pub simple_pages: u64,
    /// Rewrites of `simple/index.html`.
    pub simple_indexes: u64,
    /// Buffer flushes that wrote something.
    pub flushes: u64,
    /// How long full rewrites waited for their commit thread: near their
    /// whole time when the disk is what limits them, near none when the
    /// database and the templates are.
    pub commit_wait: Duration,
}

/// Progress of a full rewrite: the last package written.
struct FullRewrite {
    after: String,
    due: Instant,
    /// The last chunk's last batch, still committing while the loop serves
    /// its sockets and the next chunk is read: see [`Web::settle`].
    tail: Option<Tail>,
}

/// A chunk whose last batch is committing on the helper thread.
struct Tail {
    committer: Committer,
    /// Where the chunk started, to write it again if the commit fails.
    start: String,
    /// Its alias links, made once its pages are in place.
    links: Vec<(String, Vec<String>)>,
}

/// The web output task (secretary + scribe).
pub struct Web {
    scribe: Scribe,
    secretary: Secretary,
    paused: bool,
    full: Option<FullRewrite>,
    counters: Counters,
    /// The buffer changed since it was last saved to `rewrites_pending`.
    dirty: bool,
    /// Requests that changed the buffer, ever (see [`Web::changes`]).
    changes: u64,
    /// When [`Web::checkpoint_due`] last saved.
    last_checkpoint: Option<Instant>,
    /// The last save failed (logged once).
    checkpoint_failing: bool,
}

impl Web {
    /// The task, not yet started.
    pub fn new(config: WebConfig) -> Web {
        let delay = if config.dev_mode { DEV_DELAY } else { DELAY };
        Web {
            scribe: Scribe::new(config.output_path.clone(), config.site()),
            secretary: Secretary::new(delay),
            paused: false,
            full: None,
            counters: Counters::default(),
            dirty: false,
            changes: 0,
            last_checkpoint: None,
            checkpoint_failing: false,
        }
    }

    /// The scribe (direct writes, benchmarks).
    pub fn scribe(&self) -> &Scribe {
        &self.scribe
    }

    /// See [`Scribe::set_durable`].
    pub fn set_durable(&mut self, durable: bool) {
        self.scribe.set_durable(durable);
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Packages waiting in the buffer.
    pub fn pending(&self) -> usize {
        self.secretary.len()
    }

    /// Prepares the output path (directories, assets, static pages), writes
    /// the simple index and sitemaps if they are missing, and restores the
    /// buffer saved by the last shutdown. An error here is fatal (the
    /// output path is unusable).
    pub fn start(
        &mut self,
        db: &mut Database,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Result<(), WebError> {
        self.scribe.setup()?;
        let abis = db.get_build_abis(true)?.into_iter().collect();
        self.scribe.set_abi_views(abis)?;
        let root = self.scribe.root();
        if !root.join("simple").join("index.html").exists() || !root.join("sitemap.xml").exists() {
            let n = self.scribe.write_simple_index(db, None, wall)?;
            self.counters.simple_indexes += 1;
            log::info!(target: target::THE_SCRIBE, "wrote the simple index of {n} packages");
        }
        let saved = db.load_rewrites_pending()?;
        if !saved.is_empty() {
            log::info!(
                target: target::THE_SECRETARY,
                "restored {} pending rewrites",
                saved.len()
            );
        }
        self.secretary.restore(saved, now, wall);
        Ok(())
    }

    /// Saves the buffer to `rewrites_pending` (replacing what was saved);
    /// call once, when the loop ends.
    pub fn shutdown(&mut self, db: &mut Database) -> Result<(), WebError> {
        self.settle(Instant::now());
        let pending = self.secretary.pending();
        db.save_rewrites_pending(&pending)?;
        log::info!(
            target: target::THE_SECRETARY,
            "saved {} pending rewrites",
            pending.len()
        );
        Ok(())
    }

    /// Saves the buffer to `rewrites_pending` if it changed, so a master
    /// killed before the buffer's delay ran out still rewrites those pages
    /// after its restart (call before replying to a peer whose request
    /// buffered something, and once per loop turn). If the database is
    /// away, the next call tries again.
    pub fn checkpoint(&mut self, db: &mut Database) {
        if !self.dirty {
            return;
        }
        match db.save_rewrites_pending(&self.secretary.pending()) {
            Ok(()) => {
                self.dirty = false;
                self.checkpoint_failing = false;
            }
            // Once per outage, not once a second.
            Err(e) if !self.checkpoint_failing => {
                self.checkpoint_failing = true;
                log::warn!(
                    target: target::THE_SECRETARY,
                    "cannot save {} pending rewrites now: {e}; will try again",
                    self.secretary.len()
                );
            }
            Err(_) => {}
        }
    }

    /// How many requests changed the buffer so far: the loop saves before
    /// replying to a peer whose request changed it.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    fn mark_changed(&mut self) {
        self.dirty = true;
        self.changes += 1;
    }

    /// [`Web::checkpoint`] at most every [`CHECKPOINT_INTERVAL`] (once per
    /// loop turn: a PyPI catch-up changes the buffer every turn, and each
    /// save rewrites all of it).
    pub fn checkpoint_due(&mut self, db: &mut Database, now: Instant) {
        if self.dirty
            && self
                .last_checkpoint
                .is_none_or(|t| now.saturating_duration_since(t) >= CHECKPOINT_INTERVAL)
        {
            self.last_checkpoint = Some(now);
            self.checkpoint(db);
        }
    }

    /// Stops writing buffered requests (they are still accepted).
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Writes buffered requests again; check `next_deadline` afterwards.
    pub fn resume(&mut self) {
        self.paused = false;
    }

    /// When `on_timer` next has work (None: nothing buffered, or paused).
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.paused {
            return None;
        }
        let full = self.full.as_ref().map(|f| f.due);
        match (self.secretary.next_due(), full) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When the loop should call [`Web::checkpoint_due`] (None: the buffer
    /// is saved). Paused or not.
    pub fn checkpoint_deadline(&self) -> Option<Instant> {
        self.dirty.then(|| {
            self.last_checkpoint
                .map_or_else(Instant::now, |t| t + CHECKPOINT_INTERVAL)
        })
    }

    /// Writes what is due at `now`: up to [`FLUSH_CHUNK`] buffered packages
    /// (one database read, one durable batch), else the next chunk of a
    /// full rewrite. `wall` is `now` in UTC, for the pages' timestamps.
    pub fn on_timer(&mut self, now: Instant, wall: DateTime<Utc>, db: &mut Database) {
        if self.paused {
            return;
        }
        let due = self.secretary.take_due(now, FLUSH_CHUNK);
        if !due.is_empty() {
            self.settle(now);
            self.dirty = true;
            if let Err(e) = self.flush(&due, wall, db) {
                if e.is_unavailable() {
                    log::warn!(target: target::THE_SECRETARY, "cannot write {} pages now ({e}); retrying", due.len());
                    self.secretary.put_back(due, now + RETRY, wall);
                } else {
                    log::error!(target: target::THE_SECRETARY, "writing {} packages failed: {e}", due.len());
                }
            }
            return;
        }
        if self.full.as_ref().is_some_and(|f| f.due <= now) {
            self.rewrite_chunk(now, wall, db);
        }
    }

    /// Writes the pages of `items` in one batch, then the simple index if
    /// one of them is new.
    fn flush(
        &mut self,
        items: &[(String, RewriteCommand)],
        wall: DateTime<Utc>,
        db: &mut Database,
    ) -> Result<(), WebError> {
        let names: Vec<String> = items.iter().map(|(p, _)| p.clone()).collect();
        let mut batch = self.scribe.batch();
        let mut failed: Option<WebError> = None;
        let mut new_package = false;
        let mut links = Vec::new();
        let mut i = 0;
        let scribe = &self.scribe;
        let counters = &mut self.counters;
        db.for_each_project_of(&names, |row| {
            let both = items[i].1 == RewriteCommand::Both;
            i += 1;
            if failed.is_some() {
                return;
            }
            match scribe.write_row(&mut batch, &row, both, wall) {
                Ok(Some(w)) => {
                    counters.projects += 1;
                    if both {
                        counters.simple_pages += 1;
                    }
                    new_package |= w.new_package;
                    if !row.aliases.is_empty() {
                        links.push((row.package, row.aliases));
                    }
                }
                Ok(None) => {}
                Err(e) => failed = Some(e),
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        batch.commit()?;
        for (package, aliases) in links {
            self.scribe.link_aliases(&package, &aliases);
        }
        self.counters.flushes += 1;
        log::info!(target: target::THE_SECRETARY, "wrote the pages of {} packages", items.len());
        if new_package {
            self.scribe.write_simple_index(db, None, wall)?;
            self.counters.simple_indexes += 1;
        }
        Ok(())
    }

    /// Starts rewriting every package's pages (project and simple), a
    /// chunk per `on_timer` call, then the simple index. Restarts one in
    /// progress.
    pub fn start_full_rewrite(&mut self, now: Instant) {
        self.settle(now);
        log::warn!(target: target::THE_SCRIBE, "rewriting every package's pages");
        self.full = Some(FullRewrite {
            after: String::new(),
            due: now,
            tail: None,
        });
    }

    /// Waits for the last batch of a full rewrite's chunk if it is still
    /// committing, then links that chunk's aliases; if the commit failed,
    /// the rewrite goes back to that chunk, 10 s later. Every other write
    /// of package pages (flushes, deletions) settles first, so a page
    /// written from newer data is never replaced by the rewrite's older
    /// one.
    fn settle(&mut self, now: Instant) {
        let Some(full) = self.full.as_mut() else {
            return;
        };
        let Some(tail) = full.tail.take() else {
            return;
        };
        match tail.committer.finish(&mut self.counters.commit_wait) {
            Ok(()) => {
                for (package, aliases) in tail.links {
                    self.scribe.link_aliases(&package, &aliases);
                }
            }
            Err(e) => {
                log::error!(target: target::THE_SCRIBE, "full rewrite: {e}; retrying from {:?}", tail.start);
                full.after = tail.start;
                full.due = now + RETRY;
            }
        }
    }

    /// Whether a full rewrite is under way.
    pub fn rewriting(&self) -> bool {
        self.full.is_some()
    }

    fn rewrite_chunk(&mut self, now: Instant, wall: DateTime<Utc>, db: &mut Database) {
        let Some(full) = self.full.as_mut() else {
            return;
        };
        let start = full.after.clone();
        // The previous chunk's last batch may still be committing: this
        // chunk's first handover waits for it, and if it failed, the
        // rewrite goes back to where that chunk started.
        let (mut committer, previous) = match full.tail.take() {
            Some(t) => (t.committer, Some((t.start, t.links))),
            None => (Committer::default(), None),
        };
        let mut batch = self.scribe.staged_batch();
        let mut failed: Option<WebError> = None;
        let mut last = None;
        let mut links = Vec::new();
        let scribe = &self.scribe;
        let counters = &mut self.counters;
        let read = db.for_each_project_after(&full.after, REWRITE_CHUNK as i64, |row| {
            if failed.is_some() {
                return;
            }
            match scribe.write_row(&mut batch, &row, true, wall) {
                Ok(Some(_)) => {
                    counters.projects += 1;
                    counters.simple_pages += 1;
                    if !row.aliases.is_empty() {
                        links.push((row.package.clone(), row.aliases));
                    }
                }
                Ok(None) => {}
                Err(e) => failed = Some(e),
            }
            last = Some(row.package);
            if batch.len() >= COMMIT_FILES
                && let Err(e) =
                    committer.hand_over(std::mem::replace(&mut batch, scribe.staged_batch()))
            {
                failed = Some(e.into());
            }
        });
        let result = read
            .map_err(WebError::from)
            .and_then(|n| match failed {
                Some(e) => Err(e),
                None => Ok(n),
            })
            .and_then(|n| {
                // The last batch commits while the loop goes on, unless
                // this was the last chunk.
                committer.hand_over(batch)?;
                if n < REWRITE_CHUNK {
                    std::mem::take(&mut committer).finish(&mut counters.commit_wait)?;
                }
                Ok(n)
            });
        let (previous_start, previous_links) = previous.unzip();
        match result {
            Ok(n) => {
                // Every batch before the last has been committed.
                for (package, aliases) in previous_links.into_iter().flatten() {
                    self.scribe.link_aliases(&package, &aliases);
                }
                if n >= REWRITE_CHUNK {
                    if let (Some(full), Some(last)) = (self.full.as_mut(), last) {
                        full.tail = Some(Tail {
                            committer,
                            start,
                            links,
                        });
                        full.after = last;
                        full.due = now;
                    }
                    return;
                }
                for (package, aliases) in links {
                    self.scribe.link_aliases(&package, &aliases);
                }
                self.full = None;
                match self.scribe.write_simple_index(db, None, wall) {
                    Ok(n) => {
                        self.counters.simple_indexes += 1;
                        log::warn!(target: target::THE_SCRIBE, "rewrote the pages of {n} packages");
                    }
                    Err(e) => {
                        log::error!(target: target::THE_SCRIBE, "cannot write the simple index: {e}")
                    }
                }
            }
            Err(e) => {
                // Nothing may be left committing; a failure there is this
                // one again or the previous chunk's, written again below.
                let _ = committer.finish(&mut self.counters.commit_wait);
                let from = previous_start.unwrap_or(start);
                log::error!(target: target::THE_SCRIBE, "full rewrite: {e}; retrying from {from:?}");
                if let Some(full) = self.full.as_mut() {
                    full.after = from;
                    full.due = now + RETRY;
                }
            }
        }
    }

    /// Rewrites every package's pages now, chunk after chunk (benchmarks,
    /// tools; the master uses [`Web::start_full_rewrite`]).
    pub fn rewrite_all(&mut self, db: &mut Database) {
        let now = Instant::now();
        self.start_full_rewrite(now);
        while self.full.is_some() {
            self.rewrite_chunk(Instant::now(), Utc::now(), db);
            if self.full.as_ref().is_some_and(|f| f.due > Instant::now()) {
                std::thread::sleep(RETRY);
            }
        }
    }

    /// [`WebQueue::request`] at a given time (`now`/`wall`: the same moment
    /// on the monotonic and UTC clocks).
    pub fn request_at(
        &mut self,
        req: WebRequest,
        db: &mut Database,
        now: Instant,
        wall: DateTime<Utc>,
    ) {
        let result = match req {
            WebRequest::Project(p) | WebRequest::Both(p) if !writer::safe_component(&p) => {
                Err(WebError::BadName(p))
            }
            WebRequest::Project(p) => {
                if self.secretary.add(&p, RewriteCommand::Project, now, wall) {
                    self.mark_changed();
                }
                Ok(())
            }
            WebRequest::Both(p) => {
                // A merge may upgrade Project to Both: save either way.
                self.secretary.add(&p, RewriteCommand::Both, now, wall);
                self.mark_changed();
                Ok(())
            }
            WebRequest::DelPkg(p) => {
                self.settle(now);
                self.mark_changed();
                self.secretary.remove(&p);
                self.scribe.delete_package(db, &p, wall).map(|()| {
                    self.counters.simple_indexes += 1;
                })
            }
            WebRequest::DelVer(p, v) => {
                self.settle(now);
                self.mark_changed();
                self.secretary.remove(&p);
                self.scribe.delete_version(db, &p, &v, wall).map(|()| {
                    self.counters.projects += 1;
                    self.counters.simple_pages += 1;
                })
            }
            WebRequest::Log { build_id, output } => self.scribe.write_log(build_id, &output),
        };
        if let Err(e) = result {
            log::error!(target: target::THE_SCRIBE, "{e}");
        }
    }
}

impl WebQueue for Web {
    fn request(&mut self, req: WebRequest, db: &mut Database) {
        self.request_at(req, db, Instant::now(), crate::master::now_utc());
    }

    /// Every package at once is a full rewrite in chunks, not 600,000
    /// buffered requests (about 60 MB).
    fn request_all(&mut self, _both: bool, _db: &mut Database) -> Result<(), crate::db::DbError> {
        self.start_full_rewrite(Instant::now());
        Ok(())
    }
}

impl SitePages for Web {
    fn homepage(&mut self, stats: &MasterStats, now: DateTime<Utc>) {
        if let Err(e) = self.scribe.write_homepage(stats, now) {
            log::error!(target: target::THE_SCRIBE, "cannot write the homepage: {e}");
        }
    }

    fn search_index(&mut self, db: &mut Database) {
        if let Err(e) = self.scribe.write_search_index(db) {
            log::error!(target: target::THE_SCRIBE, "cannot write the search index: {e}");
        }
    }
}

/// Commits a full rewrite's batches on a helper thread, one at a time and
/// in order, so the sync and the renames of one batch (most of the cost
/// when pages change: each rename frees an old page) overlap the reading,
/// rendering and writing of the next. The thread lives for one batch. A
/// chunk's last batch goes on committing after the chunk returns (the
/// loop serves its sockets meanwhile); the next chunk waits for it, and
/// any other write of package pages settles it first ([`Web::settle`]).
#[derive(Default)]
struct Committer {
    running: Option<std::thread::JoinHandle<std::io::Result<usize>>>,
    /// How long the caller waited for the thread to finish.
    waited: Duration,
}

impl Committer {
    /// Waits for the batch committing, then starts committing `batch`. If
    /// no thread can be started, commits it here.
    fn hand_over(&mut self, batch: writer::Batch) -> std::io::Result<()> {
        self.wait()?;
        // The batch travels over a channel, not in the closure, so it is
        // still ours to commit here if no thread can be started.
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let spawned = std::thread::Builder::new()
            .name("web-commit".into())
            .spawn(move || {
                let batch: writer::Batch = match rx.recv() {
                    Ok(b) => b,
                    Err(_) => return Ok(0),
                };
                batch.commit()
            });
        match spawned {
            Ok(handle) => {
                // The receiver is alive until it has the batch.
                let _ = tx.send(batch);
                self.running = Some(handle);
                Ok(())
            }
            Err(_) => batch.commit().map(|_| ()),
        }
    }

    fn wait(&mut self) -> std::io::Result<()> {
        let Some(running) = self.running.take() else {
            return Ok(());
        };
        let t = Instant::now();
        let joined = running.join();
        self.waited += t.elapsed();
        match joined {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(std::io::Error::other("the commit thread panicked")),
        }
    }

    /// Waits for the last batch; adds the time the caller waited for the
    /// thread, ever, to `waited`.
    fn finish(mut self, waited: &mut Duration) -> std::io::Result<()> {
        let done = self.wait();
        *waited += self.waited;
        done
    }
}
