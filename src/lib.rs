//! piwheels, reimplemented: a build farm master (and its tools) that follows
//! PyPI, hands build jobs to Raspberry Pi build slaves, stores everything in
//! PostgreSQL and writes a static site that `pip` installs from.
//!
//! The crate is wire-compatible with piwheels 0.23 peers and uses the same
//! database schema; see `ARCHITECTURE.md` for the map of modules.

pub mod admin;
pub mod config;
pub mod db;
#[doc(hidden)]
pub mod fake_pypi;
pub mod info;
pub mod initdb;
pub mod logger;
pub mod logging;
pub mod master;
pub mod monitor;
pub mod names;
pub mod protocol;
pub mod pypi;
pub mod signals;
pub mod slave;
pub mod systemd;
pub mod testing;
#[doc(hidden)]
pub mod testing_sdist;
pub mod wheel;

/// The version of this crate (not the database schema level, which is
/// [`SCHEMA_VERSION`]).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The piwheels schema level this code reads and writes. It is stored in the
/// database's `configuration.version` row and must match exactly, as it does
/// for piwheels' own master.
pub const SCHEMA_VERSION: &str = "0.23";

/// Whether the effective user is root.
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// piwheels refuses to run its daemons as root; containers and this
/// project's own tests (which run as root) opt out with
/// `PIWHEELS_ALLOW_ROOT=1`.
pub fn root_allowed() -> bool {
    std::env::var_os("PIWHEELS_ALLOW_ROOT").is_some_and(|v| v == "1")
}
