//! From changelog entries to the events piwheels acts on: 0.23's
//! `PyPIEvents` without its I/O (sans-IO, so the rules are table-tested).
//!
//! * `add <type> file`: a *source* event when the file type is `source`,
//!   else a *binary* event (0.23 calls it 'create' with a version). An LRU
//!   of the last 1000 (name, version) pairs de-duplicates them: a pair seen
//!   before is passed on again only on the change binary → source, and then
//!   with the timestamp first seen.
//! * `create`: a new project (no version, whatever PyPI sent).
//! * `remove`, `remove project`, `remove release`: a removal (of the version
//!   if there is one, else of the project); the pair leaves the cache.
//! * `yank release` / `unyank release`.
//! * Everything else is dropped (it still moves the serial, which is the
//!   ordering buffer's business).

use super::lru::Lru;
use super::xmlrpc::{Action, ChangelogEntry};

/// Size of the de-duplication cache (piwheels' `cache_size`).
pub const DEDUP_CACHE_SIZE: usize = 1000;

/// What an event asks of the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A new project (never carries a version).
    Create,
    /// A source file was added: the version is buildable.
    Source,
    /// Only a binary file was added: the version is recorded as
    /// 'binary only'.
    Binary,
    /// A version (with a version) or the whole project (without) was removed.
    Remove,
    /// A version was yanked.
    Yank,
    /// A version was un-yanked.
    Unyank,
}

/// One event to apply, with the name as PyPI spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PypiEvent {
    pub name: Box<str>,
    pub version: Option<Box<str>>,
    /// Unix time, seconds.
    pub timestamp: i64,
    pub kind: EventKind,
    pub serial: i64,
}

/// A (name, version) pair of the de-duplication cache.
type Pair = (Box<str>, Option<Box<str>>);

/// The de-duplicating classifier.
#[derive(Debug)]
pub struct Classifier {
    /// (name, version) → (first timestamp, seen a source file).
    versions: Lru<Pair, (i64, bool)>,
}

impl Default for Classifier {
    fn default() -> Self {
        Classifier::new(DEDUP_CACHE_SIZE)
    }
}

impl Classifier {
    /// A classifier whose cache holds `cache_size` pairs.
    pub fn new(cache_size: usize) -> Classifier {
        Classifier {
            versions: Lru::new(cache_size),
        }
    }

    /// Forgets the cache (after a batch was rolled back, so that its
    /// events are classified afresh when they are read again).
    pub fn clear(&mut self) {
        self.versions.clear();
    }

    /// The event `entry` stands for, if any.
    pub fn classify(&mut self, entry: ChangelogEntry) -> Option<PypiEvent> {
        let ChangelogEntry {
            name,
            version,
            timestamp,
            action,
            serial,
        } = entry;
        let event = |name, version, timestamp, kind| PypiEvent {
            name,
            version,
            timestamp,
            kind,
            serial,
        };
        match action {
            Action::AddFile { source } => {
                let key = (name, version);
                match self.versions.get_mut(&key) {
                    None => {
                        self.versions.insert(key.clone(), (timestamp, source));
                        let kind = if source {
                            EventKind::Source
                        } else {
                            EventKind::Binary
                        };
                        Some(event(key.0, key.1, timestamp, kind))
                    }
                    Some(seen) => {
                        if !seen.1 && source {
                            seen.1 = true;
                            let first = seen.0;
                            Some(event(key.0, key.1, first, EventKind::Source))
                        } else {
                            None
                        }
                    }
                }
            }
            Action::Create => Some(event(name, None, timestamp, EventKind::Create)),
            Action::Remove => {
                if version.is_some() {
                    self.versions.remove(&(name.clone(), version.clone()));
                }
                Some(event(name, version, timestamp, EventKind::Remove))
            }
            Action::Yank => Some(event(name, version, timestamp, EventKind::Yank)),
            Action::Unyank => Some(event(name, version, timestamp, EventKind::Unyank)),
            Action::Other => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, version: Option<&str>, ts: i64, action: &str) -> ChangelogEntry {
        ChangelogEntry {
            name: name.into(),
            version: version.map(Into::into),
            timestamp: ts,
            action: Action::classify(action),
            serial: ts,
        }
    }

    fn run(
        c: &mut Classifier,
        rows: &[(&str, Option<&str>, i64, &str)],
    ) -> Vec<(String, Option<String>, i64, EventKind)> {
        rows.iter()
            .filter_map(|&(n, v, t, a)| c.classify(entry(n, v, t, a)))
            .map(|e| {
                (
                    e.name.to_string(),
                    e.version.map(|v| v.to_string()),
                    e.timestamp,
                    e.kind,
                )
            })
            .collect()
    }

    fn ev(
        n: &str,
        v: Option<&str>,
        t: i64,
        k: EventKind,
    ) -> (String, Option<String>, i64, EventKind) {
        (n.into(), v.map(Into::into), t, k)
    }

    #[test]
    fn table_of_0_23_rules() {
        use EventKind::*;
        let mut c = Classifier::default();
        let got = run(
            &mut c,
            &[
                ("foo", None, 1, "create"),
                ("foo", Some("1.0"), 2, "new release"),
                (
                    "foo",
                    Some("1.0"),
                    3,
                    "add py3 file foo-1.0-py3-none-any.whl",
                ),
                (
                    "foo",
                    Some("1.0"),
                    4,
                    "add cp39 file foo-1.0-cp39-cp39-linux_x86_64.whl",
                ),
                ("foo", Some("1.0"), 5, "add source file foo-1.0.tar.gz"),
                ("foo", Some("1.0"), 6, "add source file foo-1.0.zip"),
                (
                    "foo",
                    Some("1.0"),
                    7,
                    "add py3 file foo-1.0-py2-none-any.whl",
                ),
                ("foo", Some("1.0"), 8, "yank release"),
                ("foo", Some("1.0"), 9, "unyank release"),
                ("foo", Some("1.0"), 10, "remove file foo-1.0.tar.gz"),
                ("foo", None, 11, "remove Owner alice"),
                ("foo", Some("1.0"), 12, "remove release"),
                ("foo", Some("1.0"), 13, "add source file foo-1.0.tar.gz"),
                ("foo", None, 14, "remove project"),
                ("bar", Some("2.0"), 15, "create"),
                ("bar", None, 16, "remove"),
                ("baz", Some("1"), 17, "frobnicate"),
            ],
        );
        assert_eq!(
            got,
            vec![
                ev("foo", None, 1, Create),
                ev("foo", Some("1.0"), 3, Binary),
                // binary → source: passed on once, with the first timestamp
                ev("foo", Some("1.0"), 3, Source),
                ev("foo", Some("1.0"), 8, Yank),
                ev("foo", Some("1.0"), 9, Unyank),
                ev("foo", Some("1.0"), 12, Remove),
                // the removal evicted the pair: a new upload is new again
                ev("foo", Some("1.0"), 13, Source),
                ev("foo", None, 14, Remove),
                // create never carries a version
                ev("bar", None, 15, Create),
                ev("bar", None, 16, Remove),
            ]
        );
    }

    #[test]
    fn source_first_then_binary_is_not_repeated() {
        use EventKind::*;
        let mut c = Classifier::default();
        let got = run(
            &mut c,
            &[
                ("a", Some("1"), 1, "add source file a-1.tar.gz"),
                ("a", Some("1"), 2, "add py3 file a-1-py3-none-any.whl"),
                ("a", Some("1"), 3, "add source file a-1.zip"),
            ],
        );
        assert_eq!(got, vec![ev("a", Some("1"), 1, Source)]);
    }

    #[test]
    fn names_are_not_canonicalised_here() {
        let mut c = Classifier::default();
        let got = run(
            &mut c,
            &[
                ("Foo", Some("1"), 1, "add source file Foo-1.tar.gz"),
                ("foo", Some("1"), 2, "add source file foo-1.tar.gz"),
            ],
        );
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn the_cache_is_bounded_and_least_recently_used() {
        use EventKind::*;
        let mut c = Classifier::new(2);
        let got = run(
            &mut c,
            &[
                ("a", Some("1"), 1, "add py3 file x"),
                ("b", Some("1"), 2, "add py3 file x"),
                ("a", Some("1"), 3, "add py3 file x"), // refreshes a
                ("c", Some("1"), 4, "add py3 file x"), // evicts b
                ("b", Some("1"), 5, "add py3 file x"), // new again; evicts a
                ("a", Some("1"), 6, "add source file x"),
            ],
        );
        assert_eq!(
            got,
            vec![
                ev("a", Some("1"), 1, Binary),
                ev("b", Some("1"), 2, Binary),
                ev("c", Some("1"), 4, Binary),
                ev("b", Some("1"), 5, Binary),
                // a was forgotten: the source upload is new, with its own time
                ev("a", Some("1"), 6, Source),
            ]
        );
        c.clear();
        assert_eq!(
            run(&mut c, &[("c", Some("1"), 7, "add py3 file x")]).len(),
            1
        );
    }
}
