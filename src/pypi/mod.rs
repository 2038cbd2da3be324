//! Following PyPI: the client of its XML-RPC changelog and JSON API, and
//! the sans-IO rules piwheels 0.23 applies to what it reads.
//!
//! * [`client`]: [`PypiClient`], the HTTP work on one worker thread that
//!   wakes the poll loop through an inproc PAIR socket;
//! * [`xmlrpc`]: the `changelog_since_serial` request and a streaming
//!   parser of its response;
//! * [`buffer`]: 0.23's ordering buffer (epoch serial, margin, 5-minute
//!   window);
//! * [`events`]: classification of changelog actions with the 1000-entry
//!   de-duplication cache;
//! * [`description`]: `info.summary` from the JSON API and 0.23's cut;
//! * [`lru`]: the small bounded LRU both caches use.
//!
//! The task that drives all this is `master::cloud_gazer::CloudGazer`.

pub mod buffer;
pub mod client;
pub mod description;
pub mod events;
pub mod lru;
pub mod xmlrpc;

pub use buffer::OrderingBuffer;
pub use client::{ClientConfig, FetchError, Lookup, PypiClient, Reply};
pub use events::{Classifier, EventKind, PypiEvent};
pub use xmlrpc::{Action, ChangelogEntry};

/// The log target of the client (piwheels' logger `pypi`).
pub const LOG_TARGET: &str = "pypi";

/// The `User-Agent` of every request: our program and version, so PyPI
/// can tell whose requests these are.
pub const USER_AGENT: &str = concat!("piwheels-rs/", env!("CARGO_PKG_VERSION"));

/// A project name in its PEP 503 canonical form (the crate's one rule,
/// re-exported here because every name from PyPI goes through it).
pub use crate::names::canonicalize;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep_503() {
        for (name, canon) in [
            ("Foo", "foo"),
            ("foo_bar", "foo-bar"),
            ("Foo.Bar--baz__", "foo-bar-baz-"),
            ("a-_.-b", "a-b"),
            ("zope.interface", "zope-interface"),
            ("ÉCOLE", "école"),
            ("", ""),
        ] {
            assert_eq!(canonicalize(name), canon, "{name}");
        }
    }

    #[test]
    fn user_agent_names_us() {
        assert!(USER_AGENT.starts_with("piwheels-rs/"));
    }
}
