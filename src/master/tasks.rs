//! The seams between the master's tasks.
//!
//! In piwheels the tasks are threads and these are inproc sockets: the web
//! queue (REQ/REP to the_secretary), the skip queue (REQ/REP to
//! slave_driver), the stats queue (PUSH to big_brother) and the internal
//! status queue (PUSH to the main thread). Here every task is a struct in
//! one thread, so each seam is a small trait: a task is handed `&mut impl
//! WebQueue` (and so on) and calls it synchronously, exactly where piwheels
//! would send and wait for the reply.
//!
//! Each trait has the real implementation in the task that owns it, and a
//! trivial recording one on `Vec` so unit tests of a task can see what it
//! asked of the others without building them.

use crate::db::Database;
use crate::protocol::StatusMessage;

/// A request for the web output (piwheels' web queue, answered `DONE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebRequest {
    /// Rewrite the project page and its JSON (piwheels' `PROJECT`).
    Project(String),
    /// Rewrite the project page, its JSON and the package's simple index,
    /// adding the package to `simple/index.html` if it is new (`BOTH`).
    Both(String),
    /// Remove the package's wheels, pages and links (`DELPKG`).
    DelPkg(String),
    /// Remove the version's wheels and rewrite the package's pages without
    /// it (`DELVER`).
    DelVer(String, String),
    /// Write a build's log as `logs/AAAA/BBBB/CCCC.txt.gz` (`LOG`).
    Log {
        /// The build's id in the database.
        build_id: i32,
        /// The build output (pip's log).
        output: String,
    },
}

impl WebRequest {
    /// The package the request is about (every request but `Log`).
    pub fn package(&self) -> Option<&str> {
        match self {
            WebRequest::Project(p)
            | WebRequest::Both(p)
            | WebRequest::DelPkg(p)
            | WebRequest::DelVer(p, _) => Some(p),
            WebRequest::Log { .. } => None,
        }
    }
}

/// The web output as other tasks see it (the_secretary in front of
/// the_scribe).
pub trait WebQueue {
    /// Hands over a request. `DelPkg`, `DelVer` and `Log` are carried out
    /// before this returns, so a caller may delete the database rows that
    /// name the files straight afterwards; `Project` and `Both` may be held
    /// back and merged with later requests for the same package (the
    /// secretary's 60 s buffer). The database is lent for the duration of
    /// the call.
    fn request(&mut self, req: WebRequest, db: &mut Database);

    /// Rewrites every package's pages (`piw-rebuild` with no package):
    /// `Both` for each if `both`, else `Project`. The default asks for each
    /// package in turn; the web output does it in chunks instead.
    fn request_all(&mut self, both: bool, db: &mut Database) -> Result<(), crate::db::DbError> {
        let mut all = Vec::new();
        db.for_each_package(|p| all.push(p.to_string()))?;
        for p in all {
            self.request(
                if both {
                    WebRequest::Both(p)
                } else {
                    WebRequest::Project(p)
                },
                db,
            );
        }
        Ok(())
    }
}

impl WebQueue for Vec<WebRequest> {
    fn request(&mut self, req: WebRequest, _db: &mut Database) {
        self.push(req);
    }
}

/// What other tasks ask of the slave driver when PyPI or an operator
/// removes something (piwheels' skip queue, answered `OK`): keep it out of
/// the build queues for an hour and abandon any build of it in progress.
pub trait SkipQueue {
    /// A whole package is gone (`DELPKG`).
    fn skip_package(&mut self, package: &str);
    /// One version is gone (`DELVER`).
    fn skip_version(&mut self, package: &str, version: &str);
}

/// A recorded skip request, for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    Package(String),
    Version(String, String),
}

impl SkipQueue for Vec<Skip> {
    fn skip_package(&mut self, package: &str) {
        self.push(Skip::Package(package.to_string()));
    }
    fn skip_version(&mut self, package: &str, version: &str) {
        self.push(Skip::Version(package.to_string(), version.to_string()));
    }
}

/// Figures big_brother collects from other tasks (piwheels' stats queue).
pub trait StatsSink {
    /// Size and free space of the output file system, after a file landed
    /// or was removed (`STATFS`).
    fn disk(&mut self, size: u64, free: u64);
    /// Build-queue length per ABI (`STATBQ`).
    fn build_queue(&mut self, lengths: &[(String, u64)]);
    /// Downloads logged since the last report (`LOGDOWNLOAD`, every minute).
    fn downloads(&mut self, count: u64);
    /// Rewrite the homepage and search index now (`HOME`, from piw-rebuild).
    fn force_home(&mut self);
}

/// A recorded stats update, for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stat {
    Disk(u64, u64),
    BuildQueue(Vec<(String, u64)>),
    Downloads(u64),
    ForceHome,
}

impl StatsSink for Vec<Stat> {
    fn disk(&mut self, size: u64, free: u64) {
        self.push(Stat::Disk(size, free));
    }
    fn build_queue(&mut self, lengths: &[(String, u64)]) {
        self.push(Stat::BuildQueue(lengths.to_vec()));
    }
    fn downloads(&mut self, count: u64) {
        self.push(Stat::Downloads(count));
    }
    fn force_home(&mut self) {
        self.push(Stat::ForceHome);
    }
}

/// The status feed for monitors (piwheels' internal status queue, which
/// the main thread republishes on the status PUB socket).
pub trait StatusSink {
    fn publish(&mut self, msg: StatusMessage);
}

impl StatusSink for Vec<StatusMessage> {
    fn publish(&mut self, msg: StatusMessage) {
        self.push(msg);
    }
}
