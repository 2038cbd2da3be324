//! piwheels, reimplemented: a build farm master (and its tools) that follows
//! PyPI, hands build jobs to Raspberry Pi build slaves, stores everything in
//! PostgreSQL and writes a static site that `pip` installs from.
//!
//! The crate is wire-compatible with piwheels 0.23 peers and uses the same
//! database schema; see `ARCHITECTURE.md` for the map of modules.

pub mod db;
pub mod initdb;
pub mod protocol;
pub mod testing;

/// The version of this crate (not the database schema level, which is
/// [`SCHEMA_VERSION`]).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The piwheels schema level this code reads and writes. It is stored in the
/// database's `configuration.version` row and must match exactly, as it does
/// for piwheels' own master.
pub const SCHEMA_VERSION: &str = "0.23";
pub mod config;
pub mod logging;
