//! mr_chase: the operators' queue (piwheels' `MrChase`, protocol 0.23):
//! `piw-import` brings in wheels built elsewhere, `piw-add` adds packages
//! and versions, `piw-remove` removes, skips or yanks them, and
//! `piw-rebuild` asks for pages to be written again.
//!
//! Replies and error codes are 0.23's (`DONE IMPORT|NEWPKG|UPDPKG|NEWVER|
//! UPDVER|SKIPPKG|DELPKGBLD|DELPKG|SKIPVER|YANKVER|DELVERBLD|DELVER|
//! REBUILD`, `ERROR NOPKG|NOVER|SKIPPKG|SKIPVER|YANKVER` or a message), so
//! piwheels' own tools work against this master. Where 0.23 has bugs, we
//! fix them compatibly:
//! - a removal deletes the files and pages *before* the database rows that
//!   name them (0.23 deletes the rows first, so the wheels stay on disk);
//! - skipping a package or version only skips it (0.23 also deletes its
//!   pages and wheels);
//! - an import is recorded in the database only once every file has
//!   arrived and verified, so a failed transfer leaves nothing half-done;
//! - a file that fails verification is expected again before it is asked
//!   for again (0.23 forgets, and the importer hangs), at most
//!   [`MAX_ATTEMPTS`] times;
//! - every importer uses transfer id 0 on the file queue, so two imports at
//!   once would collide: imports are served one at a time, and a second
//!   client's IMPORT waits (its reply is sent when its turn comes); an
//!   import whose client goes quiet for [`IMPORT_TIMEOUT`] is dropped.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::db::{BuildLog, Database, DbError};
use crate::logging::target;
use crate::master::file_juggler::{FileJuggler, VerifyError, check_wheel_name};
use crate::master::slave_driver::built_file;
use crate::master::slave_driver::slave::Transfers;
use crate::master::tasks::{SkipQueue, StatsSink, WebQueue, WebRequest};
use crate::names::canonicalize;
use crate::protocol::import::{AddPackage, AddVersion, RemovePackage, RemoveVersion};
use crate::protocol::{
    BuildResult, BuildState, ImportReply, ImportRequest, RebuildPart, WireMessage,
};

/// The transfer id piw-import uses on the file queue.
const IMPORT_SLAVE_ID: u64 = 0;

/// Verification failures of one file before the import is refused.
pub const MAX_ATTEMPTS: u32 = 3;

/// An import whose client has been silent this long is dropped.
pub const IMPORT_TIMEOUT: Duration = Duration::from_secs(300);

/// Imports waiting for their turn, at most.
const MAX_WAITING: usize = 16;

/// What mr_chase borrows from the rest of the master to handle a request.
pub struct Env<'a> {
    pub db: &'a mut Database,
    pub files: &'a mut FileJuggler,
    pub web: &'a mut dyn WebQueue,
    /// The slave driver (piwheels' skip queue).
    pub skip: &'a mut dyn SkipQueue,
    pub stats: &'a mut dyn StatsSink,
    pub now: Instant,
    pub utc: DateTime<Utc>,
}

/// A reply for one client of the import queue.
pub type Reply = (Vec<u8>, ImportReply);

/// The import with its transfer in progress.
struct Current {
    client: Vec<u8>,
    abi_tag: String,
    transfers: Transfers,
    last_activity: Instant,
}

/// mr_chase's state.
#[derive(Default)]
pub struct MrChase {
    current: Option<Current>,
    waiting: VecDeque<(Vec<u8>, BuildState)>,
}

fn error(code: impl Into<String>) -> ImportReply {
    ImportReply::Error(code.into())
}

fn done(what: &str) -> ImportReply {
    ImportReply::Done(what.to_string())
}

impl MrChase {
    pub fn new() -> MrChase {
        MrChase::default()
    }

    /// Handles one request payload from `client`; returns the replies to
    /// send (none while an import waits its turn; possibly one for another
    /// client whose import now starts).
    pub fn handle(&mut self, client: &[u8], payload: &[u8], env: &mut Env) -> Vec<Reply> {
        let request = match ImportRequest::decode(payload) {
            Ok(r) => r,
            Err(e) => {
                log::error!(target: target::MR_CHASE, "{e}");
                return Vec::new();
            }
        };
        let reply = match request {
            ImportRequest::Import(state) => return self.do_import(client, state, env),
            ImportRequest::Sent => return self.do_sent(client, env),
            ImportRequest::AddPkg(req) => self.do_add_package(req, env),
            ImportRequest::AddVer(req) => self.do_add_version(req, env),
            ImportRequest::RemPkg(req) => self.do_remove_package(req, env),
            ImportRequest::RemVer(req) => self.do_remove_version(req, env),
            ImportRequest::Rebuild(part) => self.do_rebuild(part, env),
        };
        let reply = reply.unwrap_or_else(|e| {
            log::error!(target: target::MR_CHASE, "{e}");
            error(e.to_string())
        });
        vec![(client.to_vec(), reply)]
    }

    // ---- IMPORT and SENT ---------------------------------------------------

    fn do_import(&mut self, client: &[u8], state: BuildState, env: &mut Env) -> Vec<Reply> {
        if self.current.as_ref().is_some_and(|c| c.client == client) {
            // A REQ client cannot send twice; this one gave up and started
            // again.
            self.drop_current(env, "the client started a new import");
        }
        if self.current.is_some() {
            if self.waiting.len() >= MAX_WAITING {
                return vec![(
                    client.to_vec(),
                    error("too many imports waiting; try again later"),
                )];
            }
            log::info!(target: target::MR_CHASE, "import of {} {} waits its turn", state.package, state.version);
            self.waiting.push_back((client.to_vec(), state));
            return Vec::new();
        }
        self.start_import(client, state, env)
    }

    /// Checks an import and asks for its first file; if it is refused, the
    /// next waiting import gets its turn too.
    fn start_import(&mut self, client: &[u8], mut state: BuildState, env: &mut Env) -> Vec<Reply> {
        state.package = canonicalize(&state.package);
        match self.check_import(&state, env) {
            Ok(()) => {}
            Err(reply) => {
                let mut out = vec![(client.to_vec(), reply)];
                out.extend(self.next_waiting(env));
                return out;
            }
        }
        let mut files = crate::master::slave_driver::with_armv6l_copies(&state.files);
        files.sort_by(|a, b| a.0.filename.cmp(&b.0.filename));
        files.dedup_by(|a, b| a.0.filename == b.0.filename);
        let transfers = Transfers {
            package: state.package.clone(),
            version: state.version.clone(),
            result: BuildResult {
                status: true,
                duration: state.duration,
                output: state.output,
                files: Vec::new(),
            },
            files,
            attempts: 0,
        };
        log::info!(
            target: target::MR_CHASE,
            "importing {} {} ({} file(s))",
            transfers.package,
            transfers.version,
            transfers.files.len()
        );
        self.current = Some(Current {
            client: client.to_vec(),
            abi_tag: state.abi_tag,
            transfers,
            last_activity: env.now,
        });
        self.ask_for_next(env)
    }

    fn check_import(&self, state: &BuildState, env: &mut Env) -> Result<(), ImportReply> {
        if !state.status {
            return Err(error("importing a failed build is not supported"));
        }
        if state.files.is_empty() {
            return Err(error("no files listed for import"));
        }
        if let Some(bad) = state
            .files
            .iter()
            .find_map(|f| check_wheel_name(&f.filename).err())
        {
            return Err(error(format!("invalid file name: {bad}")));
        }
        let db_error = |e: DbError| error(e.to_string());
        let abis = env.db.get_build_abis(false).map_err(db_error)?;
        if !abis.contains(&state.abi_tag) {
            return Err(error(format!("invalid ABI: {}", state.abi_tag)));
        }
        if !env
            .db
            .test_package_version(&state.package, &state.version)
            .map_err(db_error)?
        {
            return Err(error(format!(
                "unknown package version {} {}",
                state.package, state.version
            )));
        }
        Ok(())
    }

    /// Expects the current import's next file and asks its client for it;
    /// or, if every file is in, records the import and answers DONE.
    fn ask_for_next(&mut self, env: &mut Env) -> Vec<Reply> {
        let Some(current) = self.current.as_mut() else {
            return Vec::new();
        };
        let client = current.client.clone();
        let Some(file) = current.transfers.next_file().cloned() else {
            return self.finish(env);
        };
        match env.files.expect(IMPORT_SLAVE_ID, &file) {
            Ok(()) => {
                log::info!(target: target::MR_CHASE, "send {}", file.filename);
                vec![(client, ImportReply::Send(file.filename))]
            }
            Err(e) => {
                log::error!(target: target::MR_CHASE, "cannot receive {}: {e}", file.filename);
                self.current = None;
                let mut out = vec![(client, error(e.to_string()))];
                out.extend(self.next_waiting(env));
                out
            }
        }
    }

    fn do_sent(&mut self, client: &[u8], env: &mut Env) -> Vec<Reply> {
        let Some(current) = self.current.as_mut().filter(|c| c.client == client) else {
            log::error!(target: target::MR_CHASE, "SENT without an import in progress");
            return vec![(client.to_vec(), error("protocol violation"))];
        };
        current.last_activity = env.now;
        let filename = current
            .transfers
            .next_file()
            .map(|f| f.filename.clone())
            .unwrap_or_default();
        match env
            .files
            .verify(IMPORT_SLAVE_ID, &current.transfers.package)
        {
            Ok(_) => {
                log::info!(target: target::MR_CHASE, "verified transfer of {filename}");
                if let Ok((size, free)) = crate::info::disk_usage(env.files.output()) {
                    env.stats.disk(size, free);
                }
                current.transfers.mark_current_done();
                self.ask_for_next(env)
            }
            Err(e @ VerifyError::Storage(_)) => self.fail_current(env, &format!("{e}")),
            Err(e) => {
                current.transfers.attempts += 1;
                if current.transfers.attempts >= MAX_ATTEMPTS {
                    return self.fail_current(
                        env,
                        &format!("{filename} failed verification {MAX_ATTEMPTS} times ({e})"),
                    );
                }
                log::warn!(target: target::MR_CHASE, "{e}; re-send {filename}");
                self.ask_for_next(env)
            }
        }
    }

    /// Ends the current import with an error to its client; the next
    /// waiting import starts.
    fn fail_current(&mut self, env: &mut Env, why: &str) -> Vec<Reply> {
        log::error!(target: target::MR_CHASE, "import failed: {why}");
        let mut out = Vec::new();
        if let Some(current) = self.current.take() {
            env.files.abandon(IMPORT_SLAVE_ID);
            out.push((current.client, error(why)));
        }
        out.extend(self.next_waiting(env));
        out
    }

    /// Records a finished import and answers DONE IMPORT.
    fn finish(&mut self, env: &mut Env) -> Vec<Reply> {
        let Some(current) = self.current.take() else {
            return Vec::new();
        };
        let t = current.transfers;
        let log = BuildLog {
            package: t.package.clone(),
            version: t.version.clone(),
            built_by: 0,
            duration: t.result.duration.to_std().unwrap_or(Duration::ZERO),
            abi_tag: current.abi_tag,
            status: true,
            files: t.files.iter().map(|(f, _)| built_file(f)).collect(),
        };
        let reply = match env.db.log_build(&log) {
            Ok(build_id) => {
                env.web.request(
                    WebRequest::Log {
                        build_id,
                        output: t.result.output,
                    },
                    env.db,
                );
                env.web.request(WebRequest::Both(t.package.clone()), env.db);
                log::info!(target: target::MR_CHASE, "imported {} {}", t.package, t.version);
                done("IMPORT")
            }
            Err(e) => {
                log::error!(target: target::MR_CHASE, "cannot record the import of {} {}: {e}", t.package, t.version);
                error(e.to_string())
            }
        };
        let mut out = vec![(current.client, reply)];
        out.extend(self.next_waiting(env));
        out
    }

    fn next_waiting(&mut self, env: &mut Env) -> Vec<Reply> {
        match self.waiting.pop_front() {
            Some((client, state)) => self.start_import(&client, state, env),
            None => Vec::new(),
        }
    }

    fn drop_current(&mut self, env: &mut Env, why: &str) {
        if let Some(current) = self.current.take() {
            log::warn!(
                target: target::MR_CHASE,
                "dropping the import of {} {}: {why}",
                current.transfers.package,
                current.transfers.version
            );
            env.files.abandon(IMPORT_SLAVE_ID);
        }
    }

    /// Drops an import whose client went quiet (call on a timer); returns
    /// replies for the next waiting import, if one starts.
    pub fn expire(&mut self, env: &mut Env) -> Vec<Reply> {
        if self
            .current
            .as_ref()
            .is_some_and(|c| env.now.saturating_duration_since(c.last_activity) > IMPORT_TIMEOUT)
        {
            self.drop_current(env, "the client went quiet");
            return self.next_waiting(env);
        }
        Vec::new()
    }

    /// Whether an import is in progress (for tests).
    pub fn importing(&self) -> bool {
        self.current.is_some()
    }

    // ---- ADDPKG / ADDVER ---------------------------------------------------

    fn add_aliases(
        env: &mut Env,
        package: &str,
        given: &str,
        aliases: &[String],
    ) -> Result<(), DbError> {
        // The given name goes last, so it is the newest and becomes the
        // display name.
        let mut names: Vec<&str> = aliases.iter().map(String::as_str).collect();
        names.push(package);
        names.retain(|n| *n != given);
        names.push(given);
        for name in names {
            env.db.add_package_name(package, name, Some(env.utc))?;
        }
        Ok(())
    }

    fn do_add_package(&mut self, req: AddPackage, env: &mut Env) -> Result<ImportReply, DbError> {
        let package = canonicalize(&req.package);
        let reply = if env
            .db
            .add_new_package(&package, &req.skip, &req.description)?
        {
            log::info!(target: target::MR_CHASE, "added package {package}");
            Self::add_aliases(env, &package, &req.package, &req.aliases)?;
            env.web.request(WebRequest::Both(package), env.db);
            done("NEWPKG")
        } else {
            if !req.skip.is_empty() {
                return Ok(error("SKIPPKG"));
            }
            if req.unskip {
                env.db.skip_package(&package, "")?;
            }
            if !req.description.is_empty() {
                env.db.set_package_description(&package, &req.description)?;
            }
            Self::add_aliases(env, &package, &req.package, &req.aliases)?;
            log::info!(target: target::MR_CHASE, "updated package {package}");
            env.web.request(WebRequest::Project(package), env.db);
            done("UPDPKG")
        };
        Ok(reply)
    }

    fn do_add_version(&mut self, req: AddVersion, env: &mut Env) -> Result<ImportReply, DbError> {
        let package = canonicalize(&req.package);
        if !env.db.test_package(&package)? {
            return Ok(error("NOPKG"));
        }
        let reply = if env.db.add_new_package_version(
            &package,
            &req.version,
            Some(req.released),
            &req.skip,
        )? {
            if req.yank {
                env.db.yank_version(&package, &req.version)?;
            }
            Self::add_aliases(env, &package, &req.package, &req.aliases)?;
            log::info!(target: target::MR_CHASE, "added {package} {}", req.version);
            env.web.request(WebRequest::Project(package), env.db);
            done("NEWVER")
        } else {
            if !req.skip.is_empty() {
                return Ok(error("SKIPVER"));
            }
            if req.yank {
                return Ok(error("YANKVER"));
            }
            if req.unskip {
                env.db.skip_package_version(&package, &req.version, "")?;
            }
            if req.unyank {
                env.db.unyank_version(&package, &req.version)?;
            }
            Self::add_aliases(env, &package, &req.package, &req.aliases)?;
            log::info!(target: target::MR_CHASE, "updated {package} {}", req.version);
            env.web.request(WebRequest::Both(package), env.db);
            done("UPDVER")
        };
        Ok(reply)
    }

    // ---- REMPKG / REMVER ---------------------------------------------------

    fn do_remove_package(
        &mut self,
        req: RemovePackage,
        env: &mut Env,
    ) -> Result<ImportReply, DbError> {
        let package = canonicalize(&req.package);
        if !env.db.test_package(&package)? {
            return Ok(error("NOPKG"));
        }
        let mut result = None;
        if !req.skip.is_empty() {
            env.db.skip_package(&package, &req.skip)?;
            env.skip.skip_package(&package);
            env.web.request(WebRequest::Both(package.clone()), env.db);
            log::info!(target: target::MR_CHASE, "skipped {package}: {}", req.skip);
            result = Some("SKIPPKG");
        }
        if req.builds {
            env.skip.skip_package(&package);
            let versions: Vec<String> = {
                let mut v = Vec::new();
                env.db.for_each_package_version(|p, ver| {
                    if p == package {
                        v.push(ver.to_string());
                    }
                })?;
                v
            };
            for version in versions {
                // Wheels go while the rows still name them.
                env.web
                    .request(WebRequest::DelVer(package.clone(), version.clone()), env.db);
                env.db.delete_build(&package, &version)?;
            }
            env.web.request(WebRequest::Both(package.clone()), env.db);
            log::info!(target: target::MR_CHASE, "deleted the builds of {package}");
            result = Some("DELPKGBLD");
        }
        if result.is_none() {
            env.web.request(WebRequest::DelPkg(package.clone()), env.db);
            env.skip.skip_package(&package);
            env.db.delete_package(&package)?;
            log::info!(target: target::MR_CHASE, "deleted {package}");
            result = Some("DELPKG");
        }
        Ok(done(result.unwrap_or("DELPKG")))
    }

    fn do_remove_version(
        &mut self,
        req: RemoveVersion,
        env: &mut Env,
    ) -> Result<ImportReply, DbError> {
        let package = canonicalize(&req.package);
        let version = req.version;
        if !env.db.test_package_version(&package, &version)? {
            return Ok(error("NOVER"));
        }
        let mut result = None;
        if !req.skip.is_empty() {
            env.db.skip_package_version(&package, &version, &req.skip)?;
            env.skip.skip_version(&package, &version);
            log::info!(target: target::MR_CHASE, "skipped {package} {version}: {}", req.skip);
            result = Some("SKIPVER");
        }
        if req.yank {
            env.db.yank_version(&package, &version)?;
            log::info!(target: target::MR_CHASE, "yanked {package} {version}");
            result = Some("YANKVER");
        }
        if req.builds {
            env.skip.skip_version(&package, &version);
            env.web
                .request(WebRequest::DelVer(package.clone(), version.clone()), env.db);
            env.db.delete_build(&package, &version)?;
            log::info!(target: target::MR_CHASE, "deleted the builds of {package} {version}");
            result = Some("DELVERBLD");
        }
        match result {
            Some(what) => {
                env.web.request(WebRequest::Both(package), env.db);
                Ok(done(what))
            }
            None => {
                env.web
                    .request(WebRequest::DelVer(package.clone(), version.clone()), env.db);
                env.skip.skip_version(&package, &version);
                env.db.delete_version(&package, &version)?;
                env.web.request(WebRequest::Both(package.clone()), env.db);
                log::info!(target: target::MR_CHASE, "deleted {package} {version}");
                Ok(done("DELVER"))
            }
        }
    }

    // ---- REBUILD -------------------------------------------------------------

    fn do_rebuild(&mut self, part: RebuildPart, env: &mut Env) -> Result<ImportReply, DbError> {
        let (both, package) = match part {
            RebuildPart::Home | RebuildPart::Search => {
                env.stats.force_home();
                return Ok(done("REBUILD"));
            }
            RebuildPart::Project(p) => (false, p),
            RebuildPart::Both(p) => (true, p),
        };
        let request = |p: String| {
            if both {
                WebRequest::Both(p)
            } else {
                WebRequest::Project(p)
            }
        };
        match package {
            Some(p) => {
                let p = canonicalize(&p);
                if !env.db.test_package(&p)? {
                    return Ok(error(format!("unknown package {p}")));
                }
                env.web.request(request(p), env.db);
            }
            None => {
                log::info!(target: target::MR_CHASE, "rebuilding the pages of every package");
                env.web.request_all(both, env.db)?;
            }
        }
        Ok(done("REBUILD"))
    }
}
